/** The naming library: resolver (for any Node program), name and znode layout, registrar helpers, DNS server. */
export { createResolver, Resolver } from "./resolver.js";
export type { ConnectionState, PickStrategy, Resolution, ResolverEvents, ResolverOptions, ServiceSummary } from "./resolver.js";
export { DEFAULT_NAMESPACE, InvalidNameError, parseServiceName, serviceName } from "./names.js";
export type { ServiceName } from "./names.js";
export { decodeEndpointRecord, decodeTaskId, encodeEndpointRecord, encodeTaskId, namingPaths, serviceOfPath, sortEndpoints, toEndpoint } from "./layout.js";
export type { Endpoint, EndpointRecord, NamingPaths } from "./layout.js";
export { deregisterEndpoint, ownedBy, registerEndpoint } from "./registration.js";
export type { RegisterOutcome } from "./registration.js";
export { answerDnsQuery, DEFAULT_DNS_TTL, DNS_ZONE, DnsServer, encodeWithinLimit, nodeTarget, parseDnsName } from "./dns.js";
export type { DnsQuery, DnsServerOptions, DnsSource } from "./dns.js";

/** Options `O` after `withDefaults`: every option that has a default is set. */
export type WithDefaults<D, O> = Omit<O, keyof D> & { [K in keyof D]: K extends keyof O ? Exclude<O[K], undefined> | D[K] : D[K] };

/**
 * A module's library options normalized once: its frozen `DEFAULTS`, overridden
 * by the options the caller set. An option given as `undefined` keeps its
 * default, as if it were absent.
 */
export function withDefaults<D extends object, O extends object>(defaults: D, opts: O): WithDefaults<D, O> {
  const set = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  return { ...defaults, ...set } as WithDefaults<D, O>;
}

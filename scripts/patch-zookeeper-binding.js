#!/usr/bin/env node
// Patches the npm `zookeeper` binding (7.3.x) so that libuv polls a duplicate of the C client's socket that the
// binding owns, then rebuilds the addon. Run by `npm install`/`npm ci` (postinstall) and by scripts/setup.sh;
// idempotent: a patched source with an addon built from it (the addon holds the marker) is left alone.
//
// Why: the binding polls the C client's descriptor number directly. The C client closes its socket inside
// zookeeper_process, while the binding's poll handle still watches that number, and the binding calls JavaScript
// from there; a socket opened by JavaScript then takes the number, the binding's next uv_poll_init fails
// ("already watched"), the failure is ignored and the process aborts in uv_poll_start on an uninitialized handle.
// A duplicate made with F_DUPFD_CLOEXEC stays open until libuv has let go of it, so no other socket can take its
// number while it is watched; the client's socket is told apart from its successor by inode, not by number.
// docs/lxc-and-zookeeper.md, "ZooKeeper 2", has the mechanism as found in a core dump.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const MARKER = "TORCA_POLL_DUP";
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bindingDir = join(root, "node_modules", "zookeeper");
const source = join(bindingDir, "src", "node-zk.cpp");
const addon = join(bindingDir, "build", "Release", "zookeeper.node");

/** Each edit replaces text that must occur exactly once in the binding's source. */
const EDITS = [
  {
    what: "includes",
    from: "#include <assert.h>\n",
    to: "#include <assert.h>\n#include <fcntl.h>\n#include <sys/stat.h>\n#include <unistd.h>\n",
  },
  {
    what: "yield: no socket",
    from: `        if (fd == -1 ) {
            if (zk_io) {
                uv_close((uv_handle_t*) zk_io, delete_on_close);
                zk_io = NULL;
            }
            return;
        }
`,
    to: `        if (fd == -1 ) {
            close_poll();
            return;
        }
`,
  },
  {
    what: "yield: poll handle",
    from: `        // If the file descriptor to watch has changed, then
        // a new uv_poll_t handle needs to be created to watch it.
        if (oldFd != fd) {
            // If there was an existing handle, then clean it up
            if (zk_io) {
                uv_close((uv_handle_t*) zk_io, delete_on_close);
                zk_io = NULL;
            }

            LOG_DEBUG("yield: creating a new poll handle for %lp", this);
            zk_io = (uv_poll_t*)malloc(sizeof(uv_poll_t));
            if (!zk_io) {
                LOG_ERROR("Failed to malloc memory for uv_poll_t");
                return;
             }

             zk_io->data = this;
             #ifdef WIN32
             \tuv_poll_init_socket(Nan::GetCurrentEventLoop(), zk_io, fd);
             #else
             \tuv_poll_init(Nan::GetCurrentEventLoop(), zk_io, fd);
             #endif
        }

        LOG_DEBUG("yield: starting poll for %lp from thread %lp", this);
        uv_poll_start(zk_io, events, &zk_io_cb);

        uv_timer_start(&zk_timer, &zk_timer_cb, delay, delay);
    }
`,
    to: `        // The handle polls a duplicate of the client's socket (see open_poll); a socket the client opened since,
        // even under the same number, is a different inode and gets a new handle.
        struct stat st;
        if (fstat(fd, &st) != 0) {
            LOG_ERROR("yield: fstat(%d) failed: errno %d", fd, errno);
            close_poll();
        } else if (!zk_io || st.st_dev != poll_dev || st.st_ino != poll_ino) {
            close_poll();
            open_poll(fd, st);
        }

        if (zk_io) {
            uv_poll_start(zk_io, events, &zk_io_cb);
        }
        // Without a handle the timer still calls yield again, which retries.
        uv_timer_start(&zk_timer, &zk_timer_cb, delay, delay);
    }

    // The duplicate is open until close_poll_handle runs, after libuv has let go of it, so no socket opened in
    // between (by JavaScript called from zookeeper_process) can take its number while libuv watches it.
    void open_poll(int client_fd, const struct stat& st) {
        int dup_fd = fcntl(client_fd, F_DUPFD_CLOEXEC, 0);
        if (dup_fd < 0) {
            LOG_ERROR("yield (${MARKER}): cannot duplicate socket %d: errno %d", client_fd, errno);
            return;
        }
        uv_poll_t* handle = (uv_poll_t*)malloc(sizeof(uv_poll_t));
        if (!handle) {
            LOG_ERROR("Failed to malloc memory for uv_poll_t");
            close(dup_fd);
            return;
        }
        int rc = uv_poll_init(Nan::GetCurrentEventLoop(), handle, dup_fd);
        if (rc != 0) {
            LOG_ERROR("yield: uv_poll_init(%d) failed: %s", dup_fd, uv_strerror(rc));
            free(handle);
            close(dup_fd);
            return;
        }
        handle->data = this;
        zk_io = handle;
        poll_fd = dup_fd;
        poll_dev = st.st_dev;
        poll_ino = st.st_ino;
    }

    void close_poll() {
        if (!zk_io) {
            return;
        }
        // No callback of the handle runs once it is closing, so data can carry the duplicate to close_poll_handle.
        zk_io->data = (void*)(intptr_t) poll_fd;
        uv_close((uv_handle_t*) zk_io, close_poll_handle);
        zk_io = NULL;
        poll_fd = -1;
    }

    static void close_poll_handle(uv_handle_t* handle) {
        int dup_fd = (int)(intptr_t) handle->data;
        if (dup_fd >= 0) {
            close(dup_fd);
        }
        free(handle);
    }
`,
  },
  {
    what: "realClose",
    from: `            if (zk_io) {
                int rc = uv_poll_stop(zk_io);
                LOG_DEBUG("zookeeper_close(%lp) uv_poll_stop result: %d", this, rc);

                uv_close((uv_handle_t*) zk_io, delete_on_close);
                zk_io = NULL;
            }
`,
    to: `            close_poll();
`,
  },
  {
    what: "constructor",
    from: "    ZooKeeper () : zhandle(0), fd(-1) {\n",
    to: "    ZooKeeper () : zhandle(0), fd(-1), poll_fd(-1), poll_dev(0), poll_ino(0) {\n",
  },
  {
    what: "members",
    from: "    uv_poll_t* zk_io;\n",
    to: "    uv_poll_t* zk_io;\n    int poll_fd;\n    dev_t poll_dev;\n    ino_t poll_ino;\n",
  },
];

function fail(message) {
  console.error(`patch-zookeeper-binding: ${message}`);
  process.exit(1);
}

function patchedSource(text) {
  let patched = text;
  for (const edit of EDITS) {
    const at = patched.indexOf(edit.from);
    if (at < 0 || patched.indexOf(edit.from, at + 1) >= 0) {
      fail(`${source} is not the binding this patch was written for (${edit.what}: expected text found ${at < 0 ? "nowhere" : "twice"})`);
    }
    patched = patched.slice(0, at) + edit.to + patched.slice(at + edit.from.length);
  }
  return patched;
}

/** npm's own node-gyp: npm names it to lifecycle scripts; otherwise it sits beside npm in Node's prefix. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  ];
  const found = candidates.find((p) => p && existsSync(p));
  if (!found) fail(`cannot find node-gyp (looked in ${candidates.filter(Boolean).join(", ")})`);
  return found;
}

function main() {
  if (process.platform !== "linux") return; // the edits are POSIX; Torca's agents and managers run on Linux
  if (!existsSync(source)) return; // installed without the binding (npm ci --omit, or not yet installed)
  const text = readFileSync(source, "utf8");
  if (!text.includes(MARKER)) {
    writeFileSync(source, patchedSource(text));
    console.error("patch-zookeeper-binding: patched src/node-zk.cpp");
  }
  // The marker is in one of the patch's log messages, so the addon holds it once built from the patched source.
  if (existsSync(addon) && readFileSync(addon).includes(MARKER)) return;
  // An existing build tree recompiles only node-zk.cpp; without one, configure first (the C client's build is kept).
  const gyp = nodeGyp();
  const steps = existsSync(join(bindingDir, "build", "Makefile")) ? [["build"]] : [["configure"], ["build"]];
  for (const args of steps) {
    execFileSync(process.execPath, [gyp, ...args, "--loglevel=warn"], { cwd: bindingDir, stdio: ["ignore", "ignore", "inherit"] });
  }
  console.error("patch-zookeeper-binding: rebuilt build/Release/zookeeper.node");
}

main();

// Builds the three pages, the offline page and the service worker into
// ../serving/webui, which the API serves (serving/web.py). The service
// worker keeps its name (/sw.js, so its scope is the whole origin) and gets
// the app shell's file list and a version written in at build time.

import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url));
const publicDir = resolve(root, "public");

function listFiles(dir: string, base: string = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path, base) : [relative(base, path).split("\\").join("/")];
  });
}

/** Writes the shell (every built file but the pages, the worker and robots/ico) into sw.js. */
function serviceWorkerShell(): Plugin {
  let outDir = "";
  return {
    name: "sonicforge-sw-shell",
    apply: "build",
    enforce: "post",
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    writeBundle() {
      const swPath = join(outDir, "sw.js");
      const files = listFiles(outDir)
        .filter((f) => f !== "sw.js" && !/\.(html|map|txt|ico)$/.test(f))
        .sort();
      const hash = createHash("sha256");
      for (const f of files) hash.update(f).update(readFileSync(join(outDir, f)));
      const shell = JSON.stringify({ version: hash.digest("hex").slice(0, 12), files: files.map((f) => `/${f}`) });
      const code = readFileSync(swPath, "utf8");
      if (!code.includes("__SHELL__")) this.error("sw.js has no __SHELL__ placeholder");
      writeFileSync(swPath, code.replaceAll("__SHELL__", `(${shell})`));
    },
  };
}

export default defineConfig({
  root,
  publicDir,
  base: "/",
  build: {
    outDir: resolve(root, "../serving/webui"),
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    assetsInlineLimit: 0, // no data: URLs for assets; everything is a fingerprinted file
    modulePreload: { polyfill: false },
    rollupOptions: {
      input: {
        index: resolve(root, "index.html"),
        embed: resolve(root, "embed.html"),
        console: resolve(root, "console.html"),
        offline: resolve(root, "offline.html"),
        sw: resolve(root, "src/sw.ts"),
      },
      output: {
        entryFileNames: (chunk) => (chunk.name === "sw" ? "sw.js" : "assets/[name]-[hash].js"),
        chunkFileNames: "assets/[name]-[hash].js",
        assetFileNames: "assets/[name]-[hash][extname]",
      },
    },
  },
  plugins: [serviceWorkerShell()],
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.ts"],
  },
});

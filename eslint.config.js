// ESLint flat config: typescript-eslint's recommended rules plus import cycles and folder ownership.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import { importX } from "eslint-plugin-import-x";
import { createTypeScriptImportResolver } from "eslint-import-resolver-typescript";

// Folder ownership (docs/architecture.md): lower folders never import upper ones.
const zones = [
  {
    target: "./src/sandbox",
    from: ["./src/env", "./src/process", "./src/doctor", "./src/manager.ts"],
    message: "sandbox/ depends on nothing above it",
  },
  {
    target: "./src/rpc",
    from: ["./src/env", "./src/process", "./src/sandbox", "./src/doctor"],
    message: "rpc/ is below process, env and sandbox",
  },
  {
    target: "./src/env",
    from: ["./src/doctor", "./src/manager.ts"],
    message: "only doctor/ and the manager sit above env/",
  },
  {
    target: "./src/process",
    from: ["./src/doctor", "./src/manager.ts"],
    message: "only doctor/ and the manager sit above process/",
  },
];

export default tseslint.config(
  {
    ignores: [
      "dist/**",
      "node_modules/**",
      "native/build/**",
      "prebuilds/**",
      "coverage/**",
      "bench/.work/**",
      ".tmp/**",
      ".venvs/**",
      "**/*.cjs",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts", "**/*.cts", "**/*.mts", "**/*.js", "**/*.mjs"],
    plugins: { "import-x": importX },
    settings: { "import-x/resolver-next": [createTypeScriptImportResolver({ project: "tsconfig.test.json" })] },
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        setImmediate: "readonly",
        clearImmediate: "readonly",
        URL: "readonly",
        AbortController: "readonly",
        AbortSignal: "readonly",
        TextEncoder: "readonly",
        TextDecoder: "readonly",
        queueMicrotask: "readonly",
        structuredClone: "readonly",
        globalThis: "readonly",
        performance: "readonly",
        fetch: "readonly",
        __dirname: "readonly",
        require: "readonly",
        module: "writable",
      },
    },
    rules: {
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
      "import-x/no-restricted-paths": ["error", { zones }],
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      "no-fallthrough": "error",
      // Control characters in patterns are deliberate here: output sanitizers and terminal-escape checks.
      "no-control-regex": "off",
      "no-empty": ["error", { allowEmptyCatch: true }],
    },
  },
);

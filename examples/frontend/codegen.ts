// GraphQL Code Generator: the operations in src/ typed against the committed
// SDL (docs/schema.graphql, what `crmgraph schema` prints), and a
// persisted-documents manifest (src/gql/persisted-documents.json, {sha256: text})
// that crmgraph's trusted-documents mode loads (CRMGRAPH_TRUSTED_DOCUMENTS).
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../docs/schema.graphql",
  documents: ["src/**/*.ts", "!src/gql/**/*"],
  generates: {
    "./src/gql/": {
      preset: "client",
      presetConfig: {
        persistedDocuments: { hashAlgorithm: "sha256" },
        fragmentMasking: false,
      },
      config: {
        enumsAsTypes: true,
        useTypeImports: true,
        strictScalars: true,
        scalars: {
          Date: "string",
          DateTime: "string",
          Decimal: "string",
          JSON: "unknown",
          Upload: "never",
        },
      },
    },
  },
};

export default config;

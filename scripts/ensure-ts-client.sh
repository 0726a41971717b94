#!/usr/bin/env bash
# ensure-ts-client.sh: install the TypeScript client's pinned npm dependencies
# (clients/typescript/package.json and package-lock.json: openapi-typescript, tsc, viem)
# into clients/typescript/node_modules (git-ignored). Idempotent: npm ci runs only when
# node_modules is missing or was installed from another package-lock.json. Needs node
# >= 18 and npm. TestTypeScriptClient (go test ./clients/typescript) runs it itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../clients/typescript"

want="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp=node_modules/.zkml-package-lock.sha256
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	exit 0
fi
echo "ensure-ts-client: npm ci in clients/typescript" >&2
npm ci --no-audit --no-fund >&2
echo "$want" >"$stamp"

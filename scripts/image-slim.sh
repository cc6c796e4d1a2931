#!/usr/bin/env bash
# Run by the Dockerfile's builder stage after `scripts/setup.sh run`: removes from the installed
# trees what this image never loads, so the runtime stage copies less. Only what cannot run on
# this image's platform (Linux, glibc, this CPU) or is a build by-product goes:
#   - npm packages' prebuilt binaries for other systems (Windows, macOS, musl, other CPUs), and
#     Windows debug symbols (*.pdb);
#   - node-gyp's intermediate files (build/Release/obj*, .deps; the *.node modules stay);
#   - source maps (*.map: for debugging code-server itself);
#   - Node's C headers (only node-gyp needs them) and the symbol table of the node binary;
#   - in the venv: the hub's own web assets (share/jupyterhub/static: the single-user server
#     never serves them), packages' test suites, symbol tables of extension modules, debugpy's
#     helpers for Windows and macOS;
#   - the download caches.
# And one feature, to keep the image under 1 GB: the native runtime of the GitHub Copilot agent
# SDK (@github/copilot-sdk-linux-*, 113 MB), which only Copilot CLI agent sessions load (they
# need a GitHub Copilot subscription and github.com anyway). Copilot Chat, a built-in extension,
# stays. Build with `--build-arg KEEP_COPILOT_SDK=true` to keep it.
# Usage: image-slim.sh WAIIDE_HUB_HOME VENV
set -euo pipefail

HUB_HOME="$1"
VENV="$2"
case "$(uname -m)" in
    x86_64) ARCH=x64 ;;
    aarch64) ARCH=arm64 ;;
    *) echo "image-slim: unknown machine $(uname -m); nothing removed" >&2; exit 0 ;;
esac
KEEP="linux-$ARCH"
before="$(du -sm "$HUB_HOME" | cut -f1)"

# Platform-specific payloads inside node_modules: directories named for a platform (prebuilds/,
# bin/ of ripgrep and similar) and whole packages built for one, other than linux-<this CPU>.
find "$HUB_HOME" -depth -type d -path '*/node_modules/*' \
    \( -name 'darwin-*' -o -name 'win32-*' -o -name 'linux-*' -o -name '*musl*' \
       -o -name 'linuxmusl-*' -o -name 'win10-*' \) \
    -not -name "$KEEP" -not -name "node-$KEEP" -prune -exec rm -rf {} +
find "$HUB_HOME" -depth -type d -path '*/node_modules/*' -name 'copilot-sdk-linuxmusl-*' \
    -prune -exec rm -rf {} +
if [ "${KEEP_COPILOT_SDK:-false}" != true ]; then
    find "$HUB_HOME" -depth -type d -path '*/node_modules/@github/*' -name 'copilot-sdk-linux-*' \
        -prune -exec rm -rf {} +
fi
if [ "$ARCH" = x64 ]; then
    find "$HUB_HOME" -depth -type d -path '*/node_modules/*/bin/*' -name arm64 -prune -exec rm -rf {} +
else
    find "$HUB_HOME" -depth -type d -path '*/node_modules/*/bin/*' -name x64 -prune -exec rm -rf {} +
fi
# Windows executables of a package's own bin/ (not .NET DLLs elsewhere, which any OS can load).
find "$HUB_HOME" -type f -path '*/node_modules/*/bin/*' \( -name '*.exe' -o -name '*.dll' \) -delete
find "$HUB_HOME" -type f -path '*/node_modules/*' \( -name '*.pdb' -o -name '*.map' \) -delete

# node-gyp by-products; the built modules (build/Release/*.node) are what is loaded.
find "$HUB_HOME" -depth -type d -path '*/build/Release/*' \( -name 'obj' -o -name 'obj.target' \
    -o -name '.deps' \) -prune -exec rm -rf {} +

# Node: headers are for node-gyp only; the binary's symbol table only for debuggers. The npm
# package hard-links the binary in two places: strip one, link the other to it again.
node_pkg="$HUB_HOME/node-24/node_modules/node"
rm -rf "$node_pkg"/node_modules/node-linux-*/include
for binary in "$node_pkg"/node_modules/node-linux-*/bin/node; do
    [ -f "$binary" ] || continue
    strip --strip-unneeded "$binary"
    [ ! -e "$node_pkg/bin/node" ] || ln -f "$binary" "$node_pkg/bin/node"
done

rm -rf /root/.npm /root/.cache
echo "image-slim: $HUB_HOME ${before} MB -> $(du -sm "$HUB_HOME" | cut -f1) MB" >&2

# The venv.
before="$(du -sm "$VENV" | cut -f1)"
site="$(echo "$VENV"/lib/python3*/site-packages)"
rm -rf "$VENV/share/jupyterhub/static" "$site/tornado/test"
find "$site" -depth -type d -name tests -prune -exec rm -rf {} +
find "$site/debugpy" -type f \( -name '*.dll' -o -name '*.dylib' -o -name '*.exe' -o -name '*.pdb' \) \
    -delete 2>/dev/null || true
find "$site" -type f -name '*.so' -exec strip --strip-unneeded {} + 2>/dev/null || true
echo "image-slim: $VENV ${before} MB -> $(du -sm "$VENV" | cut -f1) MB" >&2

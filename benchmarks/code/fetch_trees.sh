#!/usr/bin/env bash
# Lay out the non-Python trees of benchmarks/code/queries.json, from package registries only
# (Debian and npm), at the versions the queries were judged on. Run as root (apt-get).
#
#   bash benchmarks/code/fetch_trees.sh [DEST]    # DEST defaults to /tmp/semsearch-code-trees
#
# Trees used in place (Debian bookworm packages):
#   go-http, go-template  /usr/lib/go-1.19/src/net/http, .../text/template  (golang-1.19-src)
#   rubygems              /usr/lib/ruby/3.1.0/rubygems                       (libruby3.1)
#   symfony-console       /usr/share/php/Symfony/Component/Console           (php-symfony-console)
# Trees laid out under DEST:
#   bash-completion       /usr/share/bash-completion without its symlinks    (bash-completion)
#   ex_unit               elixir/lib/ex_unit from `apt-get source elixir`    (elixir-lang 1.14.0)
#   axios, zod-core       `npm pack axios@1.21.1`, `npm pack zod@4.6.7`
# The Python trees (asyncio, email, http, multiprocessing, unittest, mypyc-lib-rt) are
# described in docs/code-search.md.
set -euo pipefail
DEST=${1:-/tmp/semsearch-code-trees}
mkdir -p "$DEST"
export DEBIAN_FRONTEND=noninteractive

apt-get install -y -qq --no-install-recommends golang-1.19-src ruby php-symfony-console \
    bash-completion >/dev/null

# bash-completion: the regular files only (280 of its completions are symlinks to others).
if [ ! -d "$DEST/bash-completion" ]; then
    (cd /usr/share/bash-completion && find . -type f) | while read -r f; do
        mkdir -p "$DEST/bash-completion/$(dirname "$f")"
        cp "/usr/share/bash-completion/$f" "$DEST/bash-completion/$f"
    done
fi

# Elixir's sources: Debian's binary package ships only .beam files, so the source package.
if [ ! -d "$DEST/elixir" ]; then
    src=/etc/apt/sources.list.d/semsearch-bench-src.sources
    trap 'rm -f "$src"' EXIT
    if ! grep -rqs "deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n%s\n%s\n' \
            "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" >"$src"
        apt-get update -qq
    fi
    work=$(mktemp -d)
    (cd "$work" && apt-get source --download-only -qq elixir=1.14.0.dfsg-2 >/dev/null 2>&1 ||
        apt-get source --download-only -qq elixir >/dev/null)
    tar -xf "$work"/elixir-lang_*.orig.tar.xz -C "$work"
    mv "$work"/elixir-1.14.0 "$DEST/elixir"
    rm -rf "$work"
    rm -f "$src"
    apt-get update -qq
fi

# npm packages, unpacked.
for spec in axios@1.21.1:axios zod@4.6.7:zod; do
    pkg=${spec%%:*}
    dir=${spec##*:}
    if [ ! -d "$DEST/$dir" ]; then
        work=$(mktemp -d)
        (cd "$work" && npm pack "$pkg" --silent >/dev/null)
        mkdir -p "$DEST/$dir"
        tar -xzf "$work"/*.tgz -C "$DEST/$dir" --strip-components=1
        rm -rf "$work"
    fi
done
echo "trees in $DEST"

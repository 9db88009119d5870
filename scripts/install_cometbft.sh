#!/usr/bin/env bash
# Install the CometBFT version Tally is pinned to (v0.38.26), unless it is already there.
#
# Where: $TALLY_GOBIN if set, else $(go env GOPATH)/bin, the second place Tally's
# helpers look (after $TALLY_COMETBFT, before PATH), so no PATH change is needed.
# Building from source with `go install` takes about 90 s and needs only the Go
# toolchain and the Go module proxy.
set -euo pipefail

VERSION="v0.38.26"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
if [ ! -x "$GO" ]; then
  echo "install_cometbft: Go toolchain not found (looked for go on PATH and /usr/local/go/bin/go)" >&2
  exit 1
fi
GOBIN_DIR="${TALLY_GOBIN:-$("$GO" env GOPATH | cut -d: -f1)/bin}"

has_version() { [ -x "$1" ] && [ "$("$1" version 2>/dev/null)" = "${VERSION#v}" ]; }

for candidate in "${TALLY_COMETBFT:-}" "$GOBIN_DIR/cometbft" "$(command -v cometbft || true)"; do
  if [ -n "$candidate" ] && has_version "$candidate"; then
    echo "cometbft ${VERSION#v} already at $candidate"
    exit 0
  fi
done

echo "installing cometbft $VERSION into $GOBIN_DIR (go install, ~90 s)..."
mkdir -p "$GOBIN_DIR"
GOBIN="$GOBIN_DIR" "$GO" install "github.com/cometbft/cometbft/cmd/cometbft@$VERSION"
if ! has_version "$GOBIN_DIR/cometbft"; then
  echo "install_cometbft: $GOBIN_DIR/cometbft does not report ${VERSION#v}" >&2
  exit 1
fi
echo "cometbft ${VERSION#v} installed at $GOBIN_DIR/cometbft"
if [ -n "${TALLY_GOBIN:-}" ]; then
  echo "note: set TALLY_COMETBFT=$GOBIN_DIR/cometbft so Tally finds it"
fi

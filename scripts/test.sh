#!/usr/bin/env bash
# The tests, as the README gives them: installs what they need beyond the
# Rust toolchain on a Debian machine, then runs `cargo test` (arguments are
# passed on). The tests need Chromium (tests/e2e/web_actions.rs loads the
# peer's page in a headless browser, on loopback) and openssl
# (tests/e2e/security.rs checks a peer's TLS 1.3 against another TLS
# stack). The port-mapping lab (tests/e2e/portmap, root only) builds a
# router in network namespaces running miniupnpd on nftables (iproute2,
# nftables, miniupnpd-nftables); the NAT lab captures its outside network
# with tcpdump. A test that cannot run fails or skips,
# saying what is missing: nothing is skipped in silence.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(chromium openssl iproute2 nftables miniupnpd-nftables tcpdump)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
    echo "installing what the tests need: ${missing[*]}"
    sudo=""
    ((EUID == 0)) || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

exec cargo test "$@"

#!/usr/bin/env bash
# Build the Polyglot sandbox image offline: the base image's root file system
# plus the six languages' toolchains from the Debian mirror this host already
# uses, and jest/Babel from the npm registry the host's npm is configured for.
# Nothing else is contacted: Gradle's wrapper and Maven Central are not needed
# (Java tests are compiled with javac and run with JUnit's console launcher),
# and Rust crates come from Debian's librust-*-dev sources as a local registry.
#
# Usage: sandboxes/build_polyglot_image.sh [--force] [TAG] [BASE_TAG]
set -euo pipefail

FORCE=0
if [[ "${1:-}" == "--force" ]]; then FORCE=1; shift; fi
TAG="${1:-dgm-polyglot:bookworm-v2}"
BASE_TAG="${2:-dgm-base:bookworm-v1}"
HERE=$(cd "$(dirname "$0")" && pwd)

# Toolchains (see docs in dgm/bench/polyglot/languages.py for how each is used).
# rustc-web/cargo-web: bookworm's current Rust (its plain rustc is too old for
# some exercises). librust-*-dev: the crates exercises' Cargo.toml name (time, anyhow,
# rand) and those their reference solutions use (.meta/Cargo-example.toml), which the
# benchmark adds to the exercise's Cargo.toml so the agent may use them too; regex with
# the crates of its default features (librust-regex+default-dev), which cargo resolves.
# libboost-date-time-dev: the C++ exercises that include boost/date_time (gigasecond, meetup).
# catch2: a prebuilt Catch2 v2 main the C++ tests link, as Exercism's test runner does
# (EXERCISM_TEST_SUITE), instead of compiling it in every grading.
# libandroid-json-org-java: an org.json API for the one Java exercise that imports it.
APT_PACKAGES=(
  golang-go
  g++ cmake make libboost-date-time-dev catch2
  rustc-web cargo-web librust-time-dev librust-anyhow-dev librust-rand-dev
  librust-itertools-dev librust-permutohedron-dev librust-num-bigint-dev librust-num-traits-dev
  librust-regex+default-dev librust-thiserror-dev
  nodejs
  openjdk-17-jdk-headless junit5 libassertj-core-java libandroid-json-org-java
)
# What the exercises' package.json and babel.config.js name (versions as they pin them).
NPM_PACKAGES=(jest@^29.7.0 babel-jest@^29.6.4 @babel/core@^7.25.2 @exercism/babel-preset-javascript@^0.2.1
              core-js@~3.37.1)
NODE_DIR=/opt/dgm-polyglot/node

if [[ $FORCE == 0 ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "polyglot image $TAG already present"
  exit 0
fi
docker image inspect "$BASE_TAG" >/dev/null 2>&1 || "$HERE/build_base_image.sh" "$BASE_TAG"
command -v npm >/dev/null || { echo "error: npm is needed on the host to fetch jest and Babel" >&2; exit 1; }

started=$(date +%s)
work=$(mktemp -d /var/tmp/dgm-polyglot-rootfs.XXXXXX)
container=""
cleanup() {
  for m in proc dev/pts dev; do umount -l "$work/$m" 2>/dev/null || true; done
  [[ -n "$container" ]] && docker rm -f "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "unpacking $BASE_TAG into $work"
container=$(docker create "$BASE_TAG" /bin/true)
docker export "$container" | tar -x -C "$work"
docker rm -f "$container" >/dev/null; container=""

# The host's apt sources (and keys) for the duration of the install only.
mkdir -p "$work/etc/apt/sources.list.d"
cp /etc/apt/sources.list.d/*.sources "$work/etc/apt/sources.list.d/" 2>/dev/null || true
[[ -f /etc/apt/sources.list ]] && cp /etc/apt/sources.list "$work/etc/apt/sources.list"
cp -L /etc/resolv.conf "$work/etc/resolv.conf"
mount -t proc proc "$work/proc"
mount --bind /dev "$work/dev"

echo "installing toolchains from the host's configured Debian mirror (several minutes)"
chroot "$work" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c \
  "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${APT_PACKAGES[*]}" >"$work.log" 2>&1 || {
  echo "error: apt-get failed; last lines of its log:" >&2; tail -20 "$work.log" >&2; rm -f "$work.log"; exit 1; }
rm -f "$work.log"

# Rust: Debian's crate sources as the crates.io replacement, found by cargo
# from any directory below / (cargo reads /.cargo/config.toml of every ancestor).
mkdir -p "$work/.cargo"
cat >"$work/.cargo/config.toml" <<'EOF'
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "/usr/share/cargo/registry"

[net]
offline = true
EOF

# Java: one class path with JUnit's console launcher, AssertJ and org.json.
# The console launcher comes first: the test command runs the class path's first jar.
java_cp=""
for jar in junit-platform-console-standalone assertj-core json-latest byte-buddy; do
  if [[ -f "$work/usr/share/java/$jar.jar" ]]; then
    java_cp="$java_cp${java_cp:+:}/usr/share/java/$jar.jar"
  elif [[ $jar != byte-buddy ]]; then  # AssertJ's optional helper: used when Debian installed it
    echo "error: /usr/share/java/$jar.jar not found" >&2; exit 1
  fi
done

echo "installing jest and Babel from the npm registry"
mkdir -p "$work$NODE_DIR"
echo '{"name":"dgm-polyglot-node","private":true}' >"$work$NODE_DIR/package.json"
(cd "$work$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error "${NPM_PACKAGES[@]}" >/dev/null)

umount -l "$work/proc" "$work/dev"
rm -rf "$work"/var/cache/apt/archives/*.deb "$work"/var/lib/apt/lists/* "$work"/usr/share/doc/* "$work"/usr/share/man/* \
       "$work"/etc/apt/sources.list.d/*.sources "$work/etc/apt/sources.list"
: >"$work/etc/resolv.conf"

# A rebuild of the tag: the image that held it until now, removed below so none is left untagged.
replaced=$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)
tar --numeric-owner -C "$work" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  -c 'ENV PYTHONDONTWRITEBYTECODE=1' \
  -c 'ENV GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GOCACHE=/tmp/.dgm-go-cache GOPATH=/tmp/.dgm-go' \
  -c 'ENV CARGO_HOME=/tmp/.dgm-cargo CARGO_NET_OFFLINE=true' \
  -c "ENV DGM_JAVA_CLASSPATH=$java_cp DGM_NODE_MODULES=$NODE_DIR/node_modules" \
  -c 'WORKDIR /testbed' \
  -c 'LABEL dgm.image=polyglot' \
  - "$TAG" >/dev/null
if [ -n "$replaced" ] && [ "$(docker image inspect -f '{{.Id}}' "$TAG")" != "$replaced" ]; then
  docker rmi "$replaced" >/dev/null 2>&1 || true  # kept if a container or another tag uses it
fi
echo "built polyglot image $TAG in $(( $(date +%s) - started )) s"

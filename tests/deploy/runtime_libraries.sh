#!/usr/bin/env bash
# Checks offline that the runtime stage of deploy/Dockerfile installs every
# shared library the image's binaries load: each library ldd resolves for the
# binaries built here must belong to a Debian package that the runtime
# stage's `apt-get install` list names or pulls in (Depends and Pre-Depends,
# transitively, as recorded by dpkg on this Debian 12 build machine). Also
# checks that every binary given is one the Dockerfile copies into the image.
# A library the image lacks would otherwise surface only when the image runs
# (deploy/check-image.sh).
#
# Usage (ctest runs it as deploy.runtime_libraries):
#   tests/deploy/runtime_libraries.sh [--drop PKG] DOCKERFILE BINARY...
#     --drop PKG  leave PKG out of the runtime list (the suite shows that
#                 a missing package is noticed)
# Exit 0 when covered, 1 with the uncovered libraries listed, 2 on misuse.
set -euo pipefail

drop=''
if [ "${1:-}" = --drop ]; then
  drop=$2
  shift 2
fi
if [ $# -lt 2 ]; then
  echo "usage: $0 [--drop PKG] DOCKERFILE BINARY..." >&2
  exit 2
fi
dockerfile=$1
shift

# The runtime stage is everything after the last FROM; its package list is
# the words of the `apt-get install` command up to the next `&&`.
runtime=$(awk '/^FROM /{stage=""} {stage=stage $0 "\n"} END{printf "%s", stage}' "$dockerfile")
listed=$(sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' <<<"$runtime" |
  grep -o 'apt-get install[^&]*' | tr -s ' ' '\n' |
  grep -v -e '^-' -e '^apt-get$' -e '^install$' -e '^$' || true)
if [ -z "$listed" ]; then
  echo "FAIL: no apt-get install in the runtime stage of $dockerfile" >&2
  exit 1
fi
if [ -n "$drop" ]; then listed=$(grep -vx -- "$drop" <<<"$listed" || true); fi

status=0
copy_lines=$(sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' <<<"$runtime" |
  grep '^COPY --from=build' || true)
for binary in "$@"; do
  if ! grep -q "/$(basename "$binary")[[:space:]]" <<<"$copy_lines "; then
    echo "FAIL: $(basename "$binary") is not copied into the runtime stage" >&2
    status=1
  fi
done

# Every installed package with what it depends on, from one dpkg call:
# "a (>= 1) | b, c:any" -> "a b c".
declare -A depends=()
while IFS=$'\t' read -r p deps; do
  deps=$(tr '|,' '  ' <<<"$deps" | sed -e 's/([^)]*)//g' -e 's/:any//g')
  depends[$p]="${depends[$p]:-} $deps"
done < <(dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Depends}, ${Pre-Depends}\n' |
  awk -F'\t' '$1 ~ /^ii/ {print $2 "\t" $3}')

# Packages the runtime list brings: the listed ones and their dependencies.
# An alternative or virtual dependency not installed here is not followed.
declare -A installed=()
queue=()
for p in $listed; do
  if [ -z "${depends[$p]+x}" ]; then
    echo "FAIL: $p (runtime list) is not a package installed here" >&2
    status=1
  fi
  queue+=("$p")
done
while [ ${#queue[@]} -gt 0 ]; do
  p=${queue[0]}
  queue=("${queue[@]:1}")
  if [ -n "${installed[$p]:-}" ] || [ -z "${depends[$p]+x}" ]; then continue; fi
  installed[$p]=1
  for d in ${depends[$p]}; do queue+=("$d"); done
done

# The libraries the binaries load, as ldd resolves them here.
declare -A seen=()
libraries=()
for binary in "$@"; do
  if [ ! -x "$binary" ]; then
    echo "FAIL: $binary is not an executable" >&2
    status=1
    continue
  fi
  while read -r line; do
    case $line in
      *'not found'*)
        echo "FAIL: $(basename "$binary"): ${line%% *} not found by ldd here" >&2
        status=1
        continue ;;
      *'=> /'*) path=${line#*=> }; path=${path%% (*} ;;
      /*) path=${line%% (*} ;;
      *) continue ;;  # linux-vdso: from the kernel
    esac
    [ -z "${seen[$path]:-}" ] || continue
    seen[$path]="$(basename "$binary")"
    libraries+=("$path")
  done < <(ldd "$binary")
done

# Who owns each library, from one dpkg call. usrmerge: dpkg may know a
# file under /lib or /usr/lib, and under the link or the file it names.
candidates() {
  local path=$1 alt
  for alt in "$path" "$(readlink -f "$path")"; do
    echo "$alt"
    case $alt in
      /usr/*) echo "${alt#/usr}" ;;
      *) echo "/usr$alt" ;;
    esac
  done
}
declare -A owner=()
if [ ${#libraries[@]} -gt 0 ]; then
  # "libfoo1:amd64: /path" (diversions and not-found lines aside).
  while read -r line; do
    pkg=${line%%: /*}
    owner[${line#*: }]=${pkg%%:*}
  done < <(for l in "${libraries[@]}"; do candidates "$l"; done | sort -u |
    xargs dpkg-query -S 2>/dev/null | grep -E '^[^ ]+: /' || true)
fi

for path in "${libraries[@]}"; do
  pkg=''
  while read -r alt; do
    if [ -n "${owner[$alt]:-}" ]; then pkg=${owner[$alt]}; break; fi
  done < <(candidates "$path")
  if [ -z "$pkg" ]; then
    echo "FAIL: ${seen[$path]}: no package owns $path" >&2
    status=1
  elif [ -z "${installed[$pkg]:-}" ]; then
    echo "FAIL: ${seen[$path]} loads $path from $pkg, which the runtime stage does not install" >&2
    status=1
  fi
done

if [ "$status" -eq 0 ]; then
  echo "ok: ${#libraries[@]} libraries of $# binaries, all from the ${#installed[@]} packages the runtime stage installs"
fi
exit "$status"

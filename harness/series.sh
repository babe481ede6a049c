#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make series: the series for qemu-devel, in build/series/, cover letter
# first.  A git tree of the pristine QEMU gets patches/series one patch at
# a time; each new file of the overlay arrives in the patch that
# patches/new-files names for it.  Author and Signed-off-by are the git
# identity of whoever runs this (GIT_AUTHOR_NAME / GIT_AUTHOR_EMAIL, or
# git config user.name / user.email); without one it stops.

. "$(dirname "$0")/common.sh"
[ -f "$BUILD/config.sh" ] && . "$BUILD/config.sh"

# SERIES_OUT: another directory than build/series (make check uses one)
OUT=${SERIES_OUT:-$BUILD/series}
WORK=$OUT.git
MAP=$TOP/patches/new-files

name=${GIT_AUTHOR_NAME:-$(git -C "$TOP" config user.name || true)}
email=${GIT_AUTHOR_EMAIL:-$(git -C "$TOP" config user.email || true)}
if [ -z "$name" ] || [ -z "$email" ]; then
    die "make series needs a git identity for Author and Signed-off-by: set git config user.name and user.email (or GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL)"
fi

# patches/new-files as "patch-name file" lines
mapping() {
    sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$MAP" | awk '
        /^[^[:space:]].*:$/ { p = substr($0, 1, length($0) - 1); next }
        /^[[:space:]]+[^[:space:]]/ { if (p == "") { print "?", $1 } else { print p, $1 } }
        /^[^[:space:]]/ { print "!", $0 }'
}
# the name of a patch of patches/series without its number
stem() { sed 's/^[0-9]*-//' <<<"$1"; }

# The mapping must cover the overlay exactly, and name patches that exist.
[ -f "$MAP" ] || die "no $MAP"
bad=$(mapping | awk '$1 == "!" || $1 == "?"')
[ -z "$bad" ] || die "patches/new-files: cannot read: $bad"
stems=$(series_patches | while read -r p; do stem "$p"; done)
while read -r p f; do
    grep -qxF -- "$p" <<<"$stems" ||
        die "patches/new-files names $p, which is not in patches/series"
done < <(mapping)
overlay=$(cd "$TOP" && overlay_files | sort)
mapped=$(mapping | awk '{print $2}' | sort)
dup=$(uniq -d <<<"$mapped")
[ -z "$dup" ] || die "patches/new-files lists more than once: $(echo $dup)"
missing=$(comm -23 <(echo "$overlay") <(echo "$mapped"))
[ -z "$missing" ] || die "overlay files that no patch adds (list them in patches/new-files): $(echo $missing)"
extra=$(comm -13 <(echo "$overlay") <(echo "$mapped"))
[ -z "$extra" ] || die "patches/new-files lists files the overlay does not have: $(echo $extra)"

if [ -n "${QEMU_SRC:-}" ]; then
    pristine=$QEMU_SRC
    check_qemu_tree "$pristine" >/dev/null
else
    pristine=$("$TOP/harness/fetch-qemu.sh")
fi

msg "building the series in $WORK"
rm -rf "$WORK" "$OUT"
mkdir -p "$WORK" "$OUT"
rsync -a --exclude=/.git --exclude=/.complete --exclude=/.harness-inputs \
    "$pristine/" "$WORK/"
g() {
    GIT_AUTHOR_NAME=$name GIT_AUTHOR_EMAIL=$email \
    GIT_COMMITTER_NAME=$name GIT_COMMITTER_EMAIL=$email \
    git -C "$WORK" -c core.autocrlf=false "$@"
}
g init -q
g add -A
g commit -q -m "QEMU $(cat "$pristine/VERSION")"
g tag pristine

sob="Signed-off-by: $name <$email>"
n=0
while read -r p; do
    n=$((n + 1))
    # the patch's message, with the runner's sign-off in place of any other
    msgfile=$(mktemp)
    git mailinfo -b "$msgfile.body" "$msgfile.diff" < "$TOP/patches/$p" > "$msgfile.info"
    subject=$(sed -n 's/^Subject: //p' "$msgfile.info")
    {
        echo "$subject"
        echo
        { grep -v '^Signed-off-by:' "$msgfile.body" || true; } | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
        echo
        echo "$sob"
    } > "$msgfile"
    if [ -s "$msgfile.diff" ]; then
        (cd "$WORK" && git apply --index "$TOP/patches/$p") ||
            die "patches/$p does not apply at patch $n"
    fi
    while read -r mp f; do
        [ "$mp" = "$(stem "$p")" ] || continue
        mkdir -p "$WORK/$(dirname "$f")"
        cp -p "$TOP/$f" "$WORK/$f"
        g add -- "$f"
    done < <(mapping)
    g commit -q --allow-empty -F "$msgfile"
    rm -f "$msgfile" "$msgfile".*
done < <(series_patches)

# The last commit's tree is what the harness builds and tests
"$TOP/harness/prepare-tree.sh" "$pristine"
differ=$(tree_diff "$WORK" "$BUILD/src" 2>&1 || true)
if [ -n "$differ" ]; then
    head -n 10 <<<"$differ" >&2
    die "the series' last tree differs from build/src (above)"
fi

g format-patch -q --cover-letter --thread=shallow --no-signature \
    --subject-prefix="${SERIES_PREFIX:-PATCH}" -o "$OUT" pristine..HEAD
cover=$(ls "$OUT"/0000-*.patch)
# The cover letter: patches/cover-letter.txt (subject, then the text),
# with the results of the last make check on this machine
results=$BUILD/check-summary.txt
if [ -f "$results" ]; then
    sed 's/^/  /' "$results" > "$OUT/.results"
else
    echo "  (make check has not run on this machine)" > "$OUT/.results"
fi
python3 - "$cover" "$TOP/patches/cover-letter.txt" "$OUT/.results" <<'EOF'
import sys
path, text = sys.argv[1], open(sys.argv[2]).read()
results = open(sys.argv[3]).read()
subject, body = text.split('\n', 1)
body = body.replace('@RESULTS@', results.rstrip('\n'))
t = open(path).read()
t = t.replace('*** SUBJECT HERE ***', subject)
t = t.replace('*** BLURB HERE ***', body.strip('\n'))
open(path, 'w').write(t)
EOF
rm -f "$OUT/.results"
msg "series: $n patches and a cover letter in $OUT (author $name <$email>)"

#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The layers (docs/architecture.md, "Layout"): the core does no I/O, and the
# MIKE modules depend one way, codec <- rekey <- member.  Three checks:
#
#   1. includes: no file in libmcsec/core/ (nor tools/controller/core/, when
#      it exists) includes a socket, network, thread, file, clock or
#      main-loop header.  stdio.h is allowed for snprintf; check 2 catches
#      FILE I/O.  pthread.h only where documented (pthread_once).
#   2. symbols: the compiled core archives import no I/O function (nm -u,
#      minus what the archives define themselves), and nothing from io/.
#   3. direction: mike-codec.c calls no rekey, key tree or member function;
#      rekey.c no member function; lkh.c no MIKE function.
#
# usage: layers.sh SOURCE_ROOT CORE_ARCHIVE IO_ARCHIVE [CORE_ARCHIVE...]
#   the first CORE_ARCHIVE is libmcsec's (libmcsec-core.a), IO_ARCHIVE
#   libmcsec-io.a; more core archives (a controller core) are checked with
#   checks 1 and 2.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 SOURCE_ROOT CORE_ARCHIVE IO_ARCHIVE [CORE_ARCHIVE...]" >&2
  exit 2
fi
src=$1
lib_core=$(realpath "$2")
lib_io=$(realpath "$3")
shift 3
extra_cores=()
for a in "$@"; do
  extra_cores+=("$(realpath "$a")")
done
NM=${NM:-nm}
AR=${AR:-ar}
fail=0 # failures so far

bad() {
  echo "FAIL $*"
  fail=$((fail + 1))
}

# --- 1. includes ---------------------------------------------------------

# header (regex on the name between <> or "") and why it is out of the core
forbidden_headers=(
  'sys/socket\.h|sys/un\.h|netinet/.*|arpa/.*|netdb\.h|net/.*|ifaddrs\.h:sockets and networking'
  'openssl/ssl\.h:TLS connections (io/mike-client.c)'
  'poll\.h|sys/poll\.h|sys/epoll\.h|sys/select\.h|sys/eventfd\.h|sys/timerfd\.h|sys/signalfd\.h|signal\.h:waiting for events'
  'pthread\.h|threads\.h:threads'
  'fcntl\.h|unistd\.h|sys/stat\.h|sys/file\.h|sys/mman\.h|sys/ioctl\.h|dirent\.h|glob\.h:files and descriptors'
  'time\.h|sys/time\.h|sys/times\.h:the clock (the caller passes the time in)'
  'glib-unix\.h|gio/.*|glib/gstdio\.h|gmodule\.h:GLib I/O and main loop (glib.h is allowed)'
)
# documented exceptions (docs/architecture.md): FILE:HEADER
allowed_includes=(
  'libmcsec/core/sam.c:pthread.h' # pthread_once: the GF(2^8) tables
  'libmcsec/core/lkh.c:pthread.h' # pthread_once: the HKDF fetch
)

section=$fail
core_dirs=(libmcsec/core)
if [ -d "$src/tools/controller/core" ]; then
  core_dirs+=(tools/controller/core)
fi
# the headers every core file includes
core_files=(libmcsec/mcsec-private.h libmcsec/mcsec/*.h)
for d in "${core_dirs[@]}"; do
  while IFS= read -r f; do
    core_files+=("${f#"$src"/}")
  done < <(find "$src/$d" -name '*.[ch]' | sort)
done
cd "$src"
n_includes=0
for f in "${core_files[@]}"; do
  while IFS= read -r hit; do
    line=${hit%%:*}
    hdr=$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]\([^>"]*\)[>"].*/\1/p' <<<"${hit#*:}")
    n_includes=$((n_includes + 1))
    for rule in "${forbidden_headers[@]}"; do
      re=${rule%%:*}
      why=${rule#*:}
      if [[ $hdr =~ ^($re)$ ]]; then
        ok=0
        for a in "${allowed_includes[@]}"; do
          [ "$a" = "$f:$hdr" ] && ok=1
        done
        if [ $ok = 0 ]; then
          bad "include: $f:$line includes <$hdr>: $why; the core does no I/O" \
            "(move it to an io/ file or the daemon shell)"
        fi
      fi
    done
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include' "$f" || true)
done
# FILE streams (stdio.h is allowed for snprintf)
while IFS= read -r hit; do
  bad "stdio: $hit: FILE streams are I/O; the core formats into buffers only"
done < <(grep -nE '\b(FILE[[:space:]]*\*|fopen|fdopen|popen|stdin|stdout|stderr)\b' "${core_files[@]}" | grep -v '^[^:]*:[0-9]*:[[:space:]]*\(/\*\|\*\)' || true)
# the codec is the bottom of the MIKE stack
if grep -n '#[[:space:]]*include.*mcsec-rekey\.h' libmcsec/core/mike-codec.c; then
  bad "include: libmcsec/core/mike-codec.c includes mcsec-rekey.h: the codec depends on nothing above it"
fi
[ $fail != "$section" ] || echo "PASS includes: ${#core_files[@]} files in ${core_dirs[*]} (and the headers they include), $n_includes #include lines"

# --- 2. symbols ----------------------------------------------------------

# An import is forbidden when its name, without a leading __ and a trailing
# _chk, _2 or 64 (the _FORTIFY_SOURCE and LFS variants), matches.
forbidden_symbols='socket|socketpair|connect|accept.*|bind|listen|shutdown|send.*|recv.*|getaddrinfo|getnameinfo|gethostbyname.*|setsockopt|getsockopt|read|write|pread|pwrite|readv|writev|open.*|creat|close|closedir|unlink.*|rename.*|mkdir.*|stat|fstat.*|lstat|flock|fsync|fdatasync|ftruncate|lseek|fcntl|ioctl|dup|dup2|pipe.*|mmap|poll|ppoll|select|pselect|epoll_.*|eventfd|timerfd_.*|fopen|fdopen|freopen|fclose|fread|fwrite|fprintf|vfprintf|printf|vprintf|dprintf|puts|fputs|fputc|putc|putchar|fgets|fgetc|getc|getchar|getline|fflush|perror|stdin|stdout|stderr|readdir|pthread_(create|join|detach|cancel|kill|mutex_.*|cond_.*)|thrd_create|fork|vfork|system|exec.*|sleep|usleep|nanosleep|clock_gettime|clock_nanosleep|clock|time|gettimeofday|ftime|timer_.*|alarm|signal|sigaction|raise|kill|g_main_.*|g_source_.*|g_timeout_.*|g_idle_.*|g_io_.*|g_thread_.*|g_file_.*|g_get_monotonic_time|g_get_real_time|g_get_current_time|g_date_time_new_now.*|g_usleep|g_unix_.*|g_spawn_.*|g_socket_.*|g_print|g_printerr|g_key_file_load_from_.*|g_key_file_save_to_file|g_mkdir.*|g_open|g_fopen|g_remove|g_rename|g_unlink'
# names that match the above but do no I/O: G_FILE_ERROR, an error domain
allowed_symbols='g_file_error_quark'

defined_in() {
  "$NM" --defined-only "$@" 2>/dev/null | awk 'NF == 3 && $2 ~ /[A-Z]/ {print $3}' | sort -u
}
section=$fail
io_defined=$(defined_in "$lib_io")
n_imports=0
for a in "$lib_core" "${extra_cores[@]}"; do
  if [ ! -f "$a" ]; then
    bad "symbols: no archive $a"
    continue
  fi
  own=$(defined_in "$a")
  # object: symbol, for every import not defined in the archive itself
  while read -r obj sym; do
    if grep -qxF "$sym" <<<"$own"; then
      continue
    fi
    n_imports=$((n_imports + 1))
    n=${sym#__}
    n=${n%_chk}
    n=${n%_2}
    n=${n%64}
    if [[ $sym =~ ^($allowed_symbols)$ ]]; then
      continue
    elif [[ $n =~ ^($forbidden_symbols)$ ]]; then
      bad "symbol: ${obj##*/} in $(basename "$a") imports $sym: I/O, a clock," \
        "a thread or a main loop; the core does none (docs/architecture.md, Layout)"
    elif grep -qxF "$sym" <<<"$io_defined"; then
      bad "symbol: ${obj##*/} in $(basename "$a") imports $sym from io/:" \
        "the core must not depend on the io layer"
    fi
  done < <("$NM" -u -A "$a" | awk '{o = $1; sub(/:$/, "", o); n = split(o, p, ":"); print p[n], $NF}')
done
[ $fail != "$section" ] || echo "PASS symbols: $n_imports imports from $(basename "$lib_core")${extra_cores[*]:+ ${extra_cores[*]}} (none an I/O, clock, thread or main-loop call, none from io/)"

# --- 3. direction: codec <- rekey <- member; lkh below rekey and member --

objects=$("$AR" t "$lib_core")
members=$("$NM" -A -u "$lib_core" | awk '{o = $1; sub(/:$/, "", o); n = split(o, p, ":"); print p[n], $NF}')
check_object() { # OBJECT-SUFFIX FORBIDDEN-PREFIXES WHY
  local suffix=$1 re=$2 why=$3 found=0
  if ! grep -q "$suffix\$" <<<"$objects"; then
    bad "direction: no object *$suffix in $lib_core (was it renamed? fix tests/layers.sh)"
    return
  fi
  while read -r obj sym; do
    case $obj in
      *"$suffix") ;;
      *) continue ;;
    esac
    if [[ $sym =~ ^($re) ]]; then
      bad "direction: ${obj##*/} calls $sym: $why"
      found=1
    fi
  done <<<"$members"
  if [ $found = 0 ]; then
    echo "PASS direction: ${suffix%.o} calls nothing matching ^($re)"
  fi
}
check_object mike-codec.c.o 'mcsec_member_|mcsec_msa_|mcsec_rekey_|mcsec_lkh_' \
  'the codec is the bottom of the MIKE stack (codec <- rekey <- member)'
check_object rekey.c.o 'mcsec_member_|mcsec_msa_' \
  'rekey sits below the member (codec <- rekey <- member)'
check_object lkh.c.o 'mcsec_mike_|mcsec_rekey_|mcsec_member_|mcsec_msa_' \
  'the key tree uses no MIKE module (rekey and member use it)'
check_object member.c.o 'mcsec_client_|mcsec_counter_store_' \
  'the member state machine does no I/O; io/mike-client.c drives it'

if [ $fail != 0 ]; then
  echo "layers: FAILED, $fail finding(s) (see docs/architecture.md, \"Layout\")"
  exit 1
fi
echo "layers: ok"

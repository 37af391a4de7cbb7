# Sourced by the peer test suites (test/peer/*.sh): CACHE, where Debian's
# source packages and what is built from them are kept between runs:
# CKPTMPI_PEER_CACHE, else /var/cache/ckptmpi-peer when it can be written,
# else the user's cache directory.
if [ -n "${CKPTMPI_PEER_CACHE:-}" ]; then
	CACHE=$CKPTMPI_PEER_CACHE
elif mkdir -p /var/cache/ckptmpi-peer 2>/dev/null && [ -w /var/cache/ckptmpi-peer ]; then
	CACHE=/var/cache/ckptmpi-peer
else
	CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ckptmpi-peer
fi
mkdir -p "$CACHE"

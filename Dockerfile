# cemm-gateway: the gateway, its locked Python dependencies and the WireGuard tools, on
# Debian trixie. Architecture-neutral: only Debian packages and PyPI wheels by name, so the
# same file builds for amd64 and arm64 (Raspberry Pi):
#
#   docker build -t cemm-gateway:local .
#   docker buildx build --platform linux/arm64 -t cemm-gateway:local .
#
# (podman: add --format docker, or the image loses its HEALTHCHECK.) The OCI labels
# version, revision, created and source come from build arguments that
# scripts/container-build-args computes:
#
#   docker build $(scripts/container-build-args) -t cemm-gateway:local .
#
# Behind a TLS-intercepting proxy, give pip its CA as a build secret (a PEM file; it is
# added to the usual roots, used only while building, and not stored in the image):
#
#   docker build --secret id=extra_ca,src=corporate-ca.pem -t cemm-gateway:local .
#
# Run it as compose.yaml does: read-only root filesystem, tmpfs on /run and /tmp, a volume
# on /data, every capability dropped except NET_ADMIN and NET_BIND_SERVICE, /dev/net/tun.

# -- builder: a venv with exactly requirements/runtime.lock, then the project ------------
FROM debian:trixie-slim AS builder

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates binutils \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

# /opt/build holds pip (and later setuptools) and is thrown away; /opt/venv, the one that
# ships, gets no pip at all: nothing installs anything at run time.
RUN python3 -m venv /opt/build \
    && python3 -m venv --without-pip /opt/venv

# The locked dependencies. The extra CA, when given, is added to Debian's roots in a file
# that lives for one RUN. The root filesystem is read-only at run time, so everything is
# compiled now, in a form Python never re-checks against the sources' timestamps. Some
# wheels ship their extension modules with debug information (zstandard: 20 MB of it);
# strip removes only that. Some ship their own test suites (tornado: 2 MB, acme, certifi,
# mitmproxy's test helpers) and Apprise its message catalogs for its own texts (2 MB; it
# falls back to English without them, and the gateway's messages have their own): none
# of these is ever imported at run time, so they are left out. Nor are mitmproxy's
# interactive front ends (mitmweb, the console) and the terminal libraries only they import
# (urwid, wcwidth): the gateway drives mitmproxy's core. Babel at run time only negotiates
# the browser's language (the gateway's catalogs are gettext .mo files), so its locale data
# is kept for the root, English and Dutch only (32 MB less).
COPY requirements/runtime.lock /src/requirements/runtime.lock
RUN --mount=type=secret,id=extra_ca \
    if [ -s /run/secrets/extra_ca ]; then \
        cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra_ca > /tmp/ca.pem; \
        export PIP_CERT=/tmp/ca.pem; \
    fi \
    && /opt/build/bin/pip --python /opt/venv/bin/python install --no-compile \
        --require-hashes --no-deps --only-binary=:all: \
        -r /src/requirements/runtime.lock \
    && rm -f /tmp/ca.pem \
    && site="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && rm -rf "$site/tornado/test" "$site/acme/_internal/tests" "$site/certifi/tests" \
        "$site/mitmproxy/test" \
    && find "$site/apprise/i18n" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} + \
    && rm -rf "$site/mitmproxy/tools/web" "$site/mitmproxy/tools/console" "$site/urwid" \
        "$site/wcwidth" \
    && find "$site/babel/locale-data" -name '*.dat' ! -name 'root.dat' ! -name 'en.dat' \
        ! -name 'nl.dat' -delete \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        /opt/venv/lib \
    && find /opt/venv -name '*.so' -type f -exec strip --strip-debug {} +

# setuptools builds the project's wheel; its pinned, hashed version comes from the dev lock.
COPY requirements/dev.lock /src/requirements/dev.lock
RUN --mount=type=secret,id=extra_ca \
    if [ -s /run/secrets/extra_ca ]; then \
        cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra_ca > /tmp/ca.pem; \
        export PIP_CERT=/tmp/ca.pem; \
    fi \
    && awk '/^setuptools==/ {keep = 1} keep && !/^ *#/ {print} keep && !/\\$/ {exit}' \
        /src/requirements/dev.lock > /tmp/build-requirements.txt \
    && grep -q '^setuptools==' /tmp/build-requirements.txt \
    && /opt/build/bin/pip install --require-hashes --no-deps --only-binary=:all: \
        -r /tmp/build-requirements.txt \
    && rm -f /tmp/ca.pem /tmp/build-requirements.txt

# The project, installed for /opt/venv but staged under /opt/project, so that the image
# gets it as a small layer of its own: a code change leaves the dependencies' layer as is.
# A VERSION build argument (the image's version label) must be the version the wheel has.
COPY pyproject.toml README.md /src/
COPY gateway /src/gateway
COPY addons /src/addons
ARG VERSION=""
RUN cd /src \
    && /opt/build/bin/pip wheel --no-deps --no-build-isolation --no-index -w /tmp/wheels . \
    && if [ -n "$VERSION" ] && ! [ -e "/tmp/wheels/cemm_gateway-$VERSION-py3-none-any.whl" ]; then \
        echo "VERSION=$VERSION, but the wheel is $(ls /tmp/wheels)" >&2; exit 1; \
    fi \
    && /opt/build/bin/pip --python /opt/venv/bin/python install --no-compile \
        --no-deps --no-index --no-warn-script-location --root /opt/project /tmp/wheels/*.whl \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        -s /opt/project -p / /opt/project \
    && rm -rf /tmp/wheels /src/build

# -- the image -----------------------------------------------------------------------
FROM debian:trixie-slim

# python3 runs the gateway; wireguard-go (userspace, no kernel module needed), wg, ip and
# nft make the optional WireGuard endpoint and its firewall rule; tzdata lets TZ (e.g.
# Europe/Berlin) give the logs and pages local time. glibc's character-set converters
# (iconv), Python's own test suite and pydoc's texts are removed: nothing here uses them.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 wireguard-tools wireguard-go iproute2 nftables tzdata \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/log/apt /var/log/dpkg.log \
    && rm -rf /usr/lib/*-linux-gnu/gconv /usr/lib/python3*/test /usr/lib/python3*/pydoc_data \
    && mkdir -m 0700 /data

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/project/ /
COPY --chmod=0755 scripts/container-healthcheck /usr/local/bin/cemm-gateway-healthcheck

ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# The labels registries and tools read (https://github.com/opencontainers/image-spec,
# annotations.md). Empty when built without scripts/container-build-args.
ARG VERSION=""
ARG REVISION=""
ARG CREATED=""
ARG SOURCE=""
# buildah's layer cache does not look at build arguments used only in LABEL: a rebuild after
# a commit that changed no copied file kept the previous revision and date. A step that reads
# them is made again when they change, and so is every step after it.
RUN : "${VERSION} ${REVISION} ${CREATED} ${SOURCE}"
LABEL org.opencontainers.image.title="cemm-gateway" \
      org.opencontainers.image.description="Secure remote-access gateway for the CEMM home energy management module" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}"

# Everything the gateway keeps: database, keys, certificates. The only writable path that
# outlives the container.
VOLUME ["/data"]

# web (the CEMM's site), live-data WebSocket, admin app, WireGuard
EXPOSE 80/tcp 8090/tcp 8443/tcp 51820/udp

# Healthy = the gateway answers /healthz (a CEMM that is down does not count against it).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/cemm-gateway-healthcheck"]

# Python is PID 1 (exec form, no shell): SIGTERM reaches the gateway, which closes its
# connections and exits 0. Any other subcommand works too, e.g.
#   docker compose exec gateway cemm-gateway user add anna --role user
ENTRYPOINT ["cemm-gateway"]
CMD ["run"]

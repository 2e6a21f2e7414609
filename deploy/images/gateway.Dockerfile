# syntax=docker/dockerfile:1
# TumorSearch HTTP gateway (`tumorsearch gateway`): similar-case API and web page for radiology viewers.
# Build from the repository root:
#   docker build -f deploy/images/gateway.Dockerfile -t tumorsearch/gateway:0.1.0 .
# No torch: `.[gateway]` names none (tests/unit/test_deploy_images.py keeps it so).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/tumorsearch
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared/ shared/
COPY services/ services/
# Every version is pinned in pyproject.toml. pip compiles the bytecode here, so the final image (read-only
# root filesystem in compose and Kubernetes) never needs to write any.
RUN /opt/tumorsearch/bin/pip install ".[gateway]"

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="tumorsearch-gateway" \
      org.opencontainers.image.description="TumorSearch HTTP gateway: similar brain tumour search API and web page" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="python:3.11-slim-bookworm"
# A fixed uid/gid (10001) so the shared data volume has the same owner in every image and in Kubernetes'
# securityContext; the data folder is created here so a new named volume inherits that owner.
RUN groupadd --system --gid 10001 tumorsearch \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/tumorsearch \
            --shell /usr/sbin/nologin tumorsearch \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/tumorsearch
COPY --from=build /opt/tumorsearch /opt/tumorsearch
ENV PATH=/opt/tumorsearch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TUMORSEARCH_HOME=/var/lib/tumorsearch \
    TUMORSEARCH_LOG__FORMAT=json \
    TUMORSEARCH_GATEWAY__HOST=0.0.0.0
VOLUME ["/var/lib/tumorsearch"]
USER 10001:10001
EXPOSE 8080/tcp
# /healthz: the process answers (liveness). Not /readyz: a vector store or broker outage must not mark the
# gateway itself broken. No proxy: a proxy set in the environment must not see a loopback request.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:' + os.environ.get('TUMORSEARCH_GATEWAY__PORT', '8080') + '/healthz', timeout=5)"]
ENTRYPOINT ["tumorsearch"]
CMD ["gateway"]

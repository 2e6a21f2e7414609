# syntax=docker/dockerfile:1
# TumorSearch DICOM listener (`tumorsearch listener`): the PACS sends studies here.
# Build from the repository root:
#   docker build -f deploy/images/listener.Dockerfile -t tumorsearch/listener:0.1.0 .
# No torch: `.[listener]` names none (tests/unit/test_deploy_images.py keeps it so).
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
RUN /opt/tumorsearch/bin/pip install ".[listener]"

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="tumorsearch-listener" \
      org.opencontainers.image.description="TumorSearch DICOM listener: receives brain MRI studies from a PACS" \
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
    TUMORSEARCH_LISTENER__HOST=0.0.0.0 \
    TUMORSEARCH_LISTENER__METRICS_PORT=9102
VOLUME ["/var/lib/tumorsearch"]
USER 10001:10001
# DICOM, and Prometheus metrics (text on any path: also the HTTP probe of an orchestrator).
EXPOSE 11112/tcp 9102/tcp
# A real C-ECHO through the listener's own admission (peers allow *@127.0.0.1/32 by default; keep that entry
# when you set TUMORSEARCH_LISTENER__PEERS). Port and AE title follow the settings the listener reads.
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
    CMD tumorsearch echo --host 127.0.0.1 --port "${TUMORSEARCH_LISTENER__PORT:-11112}" \
        --called-ae "${TUMORSEARCH_LISTENER__AE_TITLE:-TUMORSEARCH}" --calling-ae HEALTHCHECK --timeout 5
ENTRYPOINT ["tumorsearch"]
CMD ["listener"]

# syntax=docker/dockerfile:1
# TumorSearch worker (`tumorsearch worker`): the Celery worker that segments and embeds tumours (torch).
# Build from the repository root:
#   docker build -f deploy/images/worker.Dockerfile -t tumorsearch/worker:0.1.0 .
# Runs on a GPU node (CUDA) and, slower, on a CPU-only host (TUMORSEARCH_WORKER__DEVICE=auto picks).
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
# The CUDA build of torch: PyPI's Linux x86_64 wheel of torch 2.13.0 is built for CUDA 13 and brings its CUDA
# libraries (nvidia-*-cu13 wheels), matching the CUDA 13 base. Installed first and alone so the `.[worker]`
# install below finds the pin (torch==2.13.0) satisfied. Another CUDA build: point TORCH_INDEX_URL at
# https://download.pytorch.org/whl/cu1XX and CUDA_IMAGE at the matching runtime.
ARG TORCH_INDEX_URL=https://pypi.org/simple
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install --yes --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/tumorsearch \
 && /opt/tumorsearch/bin/pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared/ shared/
COPY services/ services/
# The shipped checkpoint (shared/model/checkpoints) is package data: it travels in the installed package.
RUN /opt/tumorsearch/bin/pip install ".[worker]"

FROM ${CUDA_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="tumorsearch-worker" \
      org.opencontainers.image.description="TumorSearch worker: segments and embeds brain tumours (torch, CUDA)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="nvidia/cuda:13.0.1-runtime-ubuntu24.04"
# Only the interpreter the venv was made with (/usr/bin/python3, the same path as in the build stage).
# A fixed uid/gid (10001) so the shared data volume has the same owner in every image and in Kubernetes'
# securityContext; the data folder is created here so a new named volume inherits that owner.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tumorsearch \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/tumorsearch \
            --shell /usr/sbin/nologin tumorsearch \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/tumorsearch
COPY --from=build /opt/tumorsearch /opt/tumorsearch
ENV PATH=/opt/tumorsearch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TUMORSEARCH_HOME=/var/lib/tumorsearch \
    TUMORSEARCH_LOG__FORMAT=json
VOLUME ["/var/lib/tumorsearch"]
USER 10001:10001
# No port: the worker only connects out (broker, vector store, the PACS for DICOM SEG).
# Healthy when this container's own Celery node answers a control ping over the broker (broadcast, then the
# reply whose node name ends in @<this hostname>: the name carries the pid, see services/worker/main.py).
# With one slot (solo pool, the default) the node cannot answer while it processes a study, so a study
# must not count as a failure: 17 misses 60 s apart outlast the default hard limit of a study
# (TUMORSEARCH_WORKER__SOFT_TIME_LIMIT_S 900 + 30 s). Raise --retries with that setting.
HEALTHCHECK --interval=60s --timeout=30s --start-period=180s --retries=17 \
    CMD ["python", "-c", "import os, socket, sys; from celery import Celery; app = Celery(broker=os.environ.get('TUMORSEARCH_BROKER__URL', 'redis://127.0.0.1:6379/0')); replies = app.control.ping(timeout=5); sys.exit(0 if any(node.endswith('@' + socket.gethostname()) for reply in replies for node in reply) else 1)"]
ENTRYPOINT ["tumorsearch"]
CMD ["worker"]

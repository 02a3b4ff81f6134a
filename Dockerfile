# The image every Kubeflow / Vertex AI step runs in (`stackgan compile --image ...`).
# Build: docker build -t REGISTRY/stackgan-tfx:VERSION .   (GPU: use a CUDA base and add
# `tensorflow[and-cuda]==2.21.0` to the install line; see README "Running on Kubeflow").
FROM python:3.11-slim
WORKDIR /opt/stackgan
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
COPY requirements/ requirements/
# The pinned set is installed with --no-deps: see scripts/setup.sh for why (ml-metadata override).
RUN pip install --no-cache-dir uv==0.13.9 \
 && uv pip install --system --no-cache --no-deps -r requirements/lock.txt
COPY . .
RUN uv pip install --system --no-cache --no-deps --no-build-isolation . \
 && python -c "import stackgan.pipeline.pipeline"
ENTRYPOINT []

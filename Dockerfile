# The portal image: one stateless process; data, secrets and the database live outside.
FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 portal
WORKDIR /app
COPY pyproject.toml setup.py MANIFEST.in babel.cfg README.md ./
COPY crypto ./crypto
COPY portal ./portal
COPY investigator ./investigator
COPY templates ./templates
COPY static ./static
RUN pip install . && mkdir -p /data && chown portal /data
USER portal
ENV PORTAL_DATA_DIR=/data PORTAL_HOST=0.0.0.0 PORTAL_PORT=8000
EXPOSE 8000
# liveness through the portal's own /healthz (python, no curl in the image)
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORTAL_PORT', '8000') + '/healthz', timeout=4)"]
CMD ["sh", "-c", "portal init && exec portal serve"]

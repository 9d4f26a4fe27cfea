# The portal image: one stateless process; data, secrets and the database live outside.
FROM python:3.11-slim
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
CMD ["sh", "-c", "portal init && exec portal serve"]

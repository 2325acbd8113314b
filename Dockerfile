FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN useradd --create-home lusweb && mkdir -p /data/media && chown lusweb /data/media
USER lusweb
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "lusweb.asgi:application"]

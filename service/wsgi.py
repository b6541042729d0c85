"""The WSGI entry point for gunicorn: `gunicorn -c service/gunicorn.conf.py service.wsgi:app`."""

from service.http import create_app

app = create_app()

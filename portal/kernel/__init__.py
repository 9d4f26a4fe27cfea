"""The platform kernel: database and migrations, settings, clock, storage, mail, logs, i18n,
metrics, throttles and the service container. Knows nothing of cases, reporters or staff work;
never imports the web framework or the template engine."""

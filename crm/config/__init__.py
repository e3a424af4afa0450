"""Configuration is safe to change (issue 5): every change to dictionaries, custom fields,
roles — and, once their apps register them, pipelines, stages and rules — is logged
(`log`), the whole configuration is documented on one admin page (`document`), and it
moves between systems as JSON (`transfer`, `export_config` / `import_config`)."""

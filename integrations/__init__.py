"""What connects the CRM to a company's other systems: the REST API (`integrations.api`),
outbound webhooks (`integrations.webhooks`) and web-to-lead forms (`integrations.webforms`).

Each part is its own small Django app, the top layer of the app graph (ARCHITECTURE.md):
it reads and writes through the lower apps' selectors, services and record events only.
"""

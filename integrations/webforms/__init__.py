"""Web-to-lead forms: admin-designed forms embedded on a website that create leads."""

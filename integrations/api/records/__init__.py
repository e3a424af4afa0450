"""The API's record endpoints: customers, contacts, leads, deals, activities, tasks."""

"""The API's logic, free of HTTP: each service takes a session or a store."""

"""The use cases, between the routes and handlers above and the stores below."""

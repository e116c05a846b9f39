"""The guest runtime: everything that runs inside an extension process."""

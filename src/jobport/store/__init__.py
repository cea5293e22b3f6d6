"""The store: tables, migrations and one repository module per aggregate."""

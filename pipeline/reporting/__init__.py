"""The reports and their figures: a row of the table, the whole table, the searches (Markdown, CSV, PNG)."""

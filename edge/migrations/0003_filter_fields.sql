-- Metadata filters (README "Filters"): the index's declared filterable fields, as given to
-- POST /v1/indexes "fields" ({"name": "string" | "number" | "boolean" | "string[]"}). Set once at
-- creation and never changed (every segment's filter columns are built from it). NULL: none declared.
ALTER TABLE indexes ADD COLUMN filter_fields TEXT CHECK (filter_fields IS NULL OR json_valid(filter_fields));

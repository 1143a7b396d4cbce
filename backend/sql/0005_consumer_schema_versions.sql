-- The schema version of the code that built each consumer's active generation.
-- A start whose code declares another version (or other tables) rebuilds the
-- consumer blue/green before it serves. Rows of existing databases were built by
-- code that declared no version, which counts as 1.
ALTER TABLE consumer_generations
    ADD COLUMN schema_version integer NOT NULL DEFAULT 1 CHECK (schema_version > 0);

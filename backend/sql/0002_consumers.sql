-- Which generation of its tables each consumer serves from (blue/green rebuilds).
-- Physical tables are {base}_g{generation}; a view named {base} selects from the
-- active one. The consumer's position is the tracking row '{name}#g{generation}'.
CREATE TABLE consumer_generations (
    consumer_name       text        PRIMARY KEY,
    generation          integer     NOT NULL CHECK (generation > 0),
    -- The base names of the tables the active generation owns, so a swap or a
    -- drop never depends on what today's code declares.
    tables              text[]      NOT NULL DEFAULT '{}',
    -- Set while a rebuild into that generation is replaying; NULL otherwise.
    building_generation integer,
    swapped_at          timestamptz NOT NULL DEFAULT now()
);

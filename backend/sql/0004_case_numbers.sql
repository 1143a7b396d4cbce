-- 办件编号 sequences: one counter per region and day, bumped atomically, never reused.
CREATE TABLE case_number_sequences (
    region text    NOT NULL,
    day    date    NOT NULL,
    last   integer NOT NULL,
    PRIMARY KEY (region, day)
);

-- The shape of each read model's tables, as its projector's `schema_version`. When a
-- release changes a read model, opening the store rebuilds it into fresh tables (the old
-- ones keep serving until the swap) and records the new version here. Read models written
-- before this column existed are version 1.
ALTER TABLE projection_checkpoint ADD COLUMN schema_version BIGINT NOT NULL DEFAULT 1;

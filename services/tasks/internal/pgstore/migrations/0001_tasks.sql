-- Tasks, in stored order, and each owner's count: the per-user quota and the place of each
-- of their tasks, so that a page deep in a long list is found through the index, not by
-- counting the tasks before it.

CREATE TABLE task_owners (
    owner text PRIMARY KEY,     -- a user id; '' for the tasks with no owner (the original's)
    tasks bigint NOT NULL,      -- how many tasks they own
    bytes bigint NOT NULL       -- what those take as tasks.txt records (TASK_BYTES_PER_USER)
);

CREATE TABLE tasks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- stored order
    owner text NOT NULL,
    pos bigint NOT NULL,        -- place among the owner's tasks: 0, 1, 2, … with no gap
    task json NOT NULL,         -- {"title":…,"text":…} byte for byte as GET /tasks answers it
    created_at timestamptz NOT NULL DEFAULT now(),
    import_key text UNIQUE,     -- set by -import: the record's place in its file and digest
    CONSTRAINT tasks_owner_pos UNIQUE (owner, pos)
);

-- task_view_start returns, for the list viewer sees (their tasks and those with no owner,
-- merged in stored order), how many of each come before place start, and the list's length:
-- a binary search over the viewer's tasks, two index lookups a step. STABLE, so every
-- lookup sees the snapshot of the statement that calls it.
CREATE FUNCTION task_view_start(viewer text, start bigint,
                                OUT own_from bigint, OUT unowned_from bigint, OUT total bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    own bigint := coalesce((SELECT o.tasks FROM task_owners o WHERE o.owner = viewer), 0);
    unowned bigint := coalesce((SELECT o.tasks FROM task_owners o WHERE o.owner = ''), 0);
    lo bigint;
    hi bigint;
    mid bigint;
    own_id bigint;
    unowned_id bigint;
BEGIN
    IF viewer = '' THEN
        own := 0;
    END IF;
    total := own + unowned;
    start := least(greatest(start, 0), total);
    -- own_from is the least i in [lo, hi] such that own task i comes after unowned task
    -- start-i-1: the first start places hold own tasks 0..i-1 and unowned 0..start-i-1.
    lo := greatest(0, start - unowned);
    hi := least(start, own);
    WHILE lo < hi LOOP
        mid := (lo + hi) / 2;
        SELECT t.id INTO own_id FROM tasks t WHERE t.owner = viewer AND t.pos = mid;
        SELECT t.id INTO unowned_id FROM tasks t WHERE t.owner = '' AND t.pos = start - mid - 1;
        IF own_id < unowned_id THEN
            lo := mid + 1;
        ELSE
            hi := mid;
        END IF;
    END LOOP;
    own_from := lo;
    unowned_from := start - lo;
END
$$;

-- Re-index jobs: where a job stands, so it resumes after a crash (see src/service/reindex-job.ts).
-- phase: encode (re-encoding into the new model's key space) | swap | drop (removing the old key space) |
--        cleanup (cancelled or failed: removing the new key space) | done.
ALTER TABLE jobs ADD COLUMN phase TEXT;
-- Internal key (decimal) of the last item of the last committed batch of the current phase: the resume point.
ALTER TABLE jobs ADD COLUMN cursor TEXT;
-- Job parameters as submitted (JSON), and its result (JSON: SID stability report, mapping file).
ALTER TABLE jobs ADD COLUMN params TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(params));
ALTER TABLE jobs ADD COLUMN result TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(result));

-- Files attached to cases: photos of the site, scans of signed papers. The content (and an
-- image's thumbnail) is sealed with the case's data key, so erasing the case's key makes
-- them unreadable, and a backup of the store carries them. The case's AttachmentAdded
-- event holds the SHA-256 of the content and of the sealed bytes, so the hash chain covers
-- them and `audit verify` checks them without a key. A row whose event was never appended
-- (a command refused after the upload was stored) is deleted by the service.
CREATE TABLE attachments
(
    attachment_id text PRIMARY KEY,
    case_id       text NOT NULL,
    content       blob NOT NULL,
    thumbnail     blob,
    created_at    text NOT NULL
);
CREATE INDEX attachments_case ON attachments (case_id);

-- Search terms of the party registry: keyed hashes (blind indexes) of every prefix of a
-- party's name, of its phone number and of its ID number. A search hashes what is typed
-- and looks the hash up here, so the registry can be searched by a name's first
-- characters without decrypting it. Written by the service when a party is registered or
-- corrected (and, for parties registered before this release, when the service opens);
-- deleted when the party is erased.
CREATE TABLE party_terms
(
    party_id text NOT NULL,
    term     text NOT NULL,
    PRIMARY KEY (term, party_id)
);
CREATE INDEX party_terms_party ON party_terms (party_id);

-- The verification code on a printed document is the start of the chain hash of the case's
-- last logged event; `/verify/{code}` finds it here.
CREATE INDEX event_log_code ON event_log (substr(chain_hash, 1, 12));

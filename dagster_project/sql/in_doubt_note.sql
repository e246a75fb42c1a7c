-- One more request carrying the token that got (or may get) no usable answer: recorded before a
-- resend goes out and after a first send's answer is lost.
INSERT INTO esputnik_token_in_doubt
    (app_uuid, token, contact_id, external_customer_id, phone, email, sends, run_id, chunk_no,
     noted_at)
VALUES (:app_uuid, :token, :contact_id, :external_customer_id, :phone, :email, 1, :run_id,
        :chunk_no, :noted_at)
ON CONFLICT (app_uuid, token) DO UPDATE
SET sends = esputnik_token_in_doubt.sends + 1,
    run_id = excluded.run_id,
    chunk_no = excluded.chunk_no,
    noted_at = excluded.noted_at

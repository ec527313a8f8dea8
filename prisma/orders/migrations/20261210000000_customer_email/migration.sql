-- The customer's email address, for the notifications service's emails (optional; personal data,
-- kept like the shipping address and never logged).
ALTER TABLE "orders" ADD COLUMN "email" TEXT;

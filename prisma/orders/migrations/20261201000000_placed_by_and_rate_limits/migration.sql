-- Who placed each order (the identity key of the client's token: issuer#subject). Orders written
-- before there were clients belong to no one a storefront can name, so only operators see them.
ALTER TABLE "orders" ADD COLUMN "placed_by" TEXT NOT NULL DEFAULT '';
ALTER TABLE "orders" ALTER COLUMN "placed_by" DROP DEFAULT;
CREATE INDEX "orders_placed_by_idx" ON "orders"("placed_by");

-- The API's rate-limit counters, shared by every API replica.
CREATE TABLE "api_rate_limits" (
    "key" TEXT NOT NULL,
    "window_start" TIMESTAMPTZ(3) NOT NULL,
    "hits" INTEGER NOT NULL,

    CONSTRAINT "api_rate_limits_pkey" PRIMARY KEY ("key")
);

-- CreateTable
CREATE TABLE "shipments" (
    "id" TEXT NOT NULL,
    "order_id" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "carrier_ref" TEXT,
    "tracking_number" TEXT,
    "country" TEXT NOT NULL,
    "address" JSONB NOT NULL,
    "picked_up_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "shipments_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "shipments_order_id_key" ON "shipments"("order_id");

-- CreateIndex
CREATE UNIQUE INDEX "shipments_carrier_ref_key" ON "shipments"("carrier_ref");

-- CreateIndex
CREATE INDEX "shipments_status_idx" ON "shipments"("status");

-- AlterTable
ALTER TABLE "shipments" ADD COLUMN     "reconciled_at" TIMESTAMPTZ(3),
ADD COLUMN     "reconciliation_issue" TEXT;

-- CreateIndex
CREATE INDEX "shipments_reconciled_at_updated_at_idx" ON "shipments"("reconciled_at", "updated_at");

/** The payments service's contract: its task queue and the shapes its activities exchange. */
export const PAYMENTS_TASK_QUEUE = 'payments';

export interface AuthorisePaymentInput {
  /** idempotency key of the payment: workflow ID + step */
  paymentId: string;
  orderId: string;
  amount: number;
  currency: string;
  /** a provider token (e.g. tok_visa), never card data */
  token: string;
}

export interface Authorisation {
  paymentId: string;
  authorisationId: string;
  amount: number;
  currency: string;
}

export interface ReauthorisePaymentInput {
  paymentId: string;
  orderId: string;
  token: string;
  /** 1 for the first re-authorisation, 2 for the next…: part of the idempotency key */
  round: number;
}

export interface PaymentRef {
  paymentId: string;
  orderId: string;
}

export interface Capture {
  paymentId: string;
  captureId: string;
  amount: number;
}

export type PaymentStatus = 'PENDING' | 'AUTHORISED' | 'DECLINED' | 'CAPTURED' | 'VOIDED' | 'REFUNDED';

/** What a payment compensation did: nothing is a valid answer when there was nothing to undo. */
export interface PaymentReversal {
  paymentId: string;
  action: 'VOIDED' | 'REFUNDED' | 'NONE';
  amount: number;
}

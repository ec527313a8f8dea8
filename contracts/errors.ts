/**
 * Failure type names shared by activities (which throw them) and workflows (which classify them).
 * Business refusals are non-retryable: retrying a declined card or an empty shelf cannot help.
 */
export const ErrorType = {
  OutOfStock: 'OutOfStock',
  UnknownProduct: 'UnknownProduct',
  MixedCurrency: 'MixedCurrency',
  PaymentDeclined: 'PaymentDeclined',
  ShippingUnavailable: 'ShippingUnavailable',
  PickupTimeout: 'PickupTimeout',
  OrderCancelled: 'OrderCancelled',
  OrderNotCancellable: 'OrderNotCancellable',
  ReviewRejected: 'ReviewRejected',
  /** a review sent to an order that is not waiting for one, or without a reviewer */
  NotAwaitingReview: 'NotAwaitingReview',
  /** an operator's retry or resolve sent to an order that is not waiting for one */
  NotNeedingAttention: 'NotNeedingAttention',
  /** a cancel from someone who neither placed the order nor operates the platform */
  NotOrderOwner: 'NotOrderOwner',
  /** a review by the client that placed the order */
  SelfReview: 'SelfReview',
  /** a review, cancel or operator action that names no one: every change to an order is someone's */
  IdentityRequired: 'IdentityRequired',
  /** The carrier refused to cancel a live booking: no retry changes that, so the order waits for an operator. */
  ShipmentCancelRefused: 'ShipmentCancelRefused',
  /** A forward step found its compensation had already run (a zombie retry after a timeout). */
  AlreadyCompensated: 'AlreadyCompensated',
  /** A database refused the data itself (SQLSTATE class 22 or 23): retrying cannot help. */
  InvalidData: 'InvalidData',
  /** A service did not answer within a forward step's deadline (its retries ran out). */
  OrdersUnavailable: 'OrdersUnavailable',
  InventoryUnavailable: 'InventoryUnavailable',
  PaymentsUnavailable: 'PaymentsUnavailable',
  ShippingServiceUnavailable: 'ShippingServiceUnavailable',
} as const;
export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

/** Why an order ended FAILED, as shown to storefronts and operators. */
export const FailureReason = {
  OUT_OF_STOCK: 'OUT_OF_STOCK',
  UNKNOWN_PRODUCT: 'UNKNOWN_PRODUCT',
  PAYMENT_DECLINED: 'PAYMENT_DECLINED',
  SHIPPING_UNAVAILABLE: 'SHIPPING_UNAVAILABLE',
  SHIPPING_TIMEOUT: 'SHIPPING_TIMEOUT',
  REVIEW_REJECTED: 'REVIEW_REJECTED',
  INVALID_DATA: 'INVALID_DATA',
  ORDERS_UNAVAILABLE: 'ORDERS_UNAVAILABLE',
  INVENTORY_UNAVAILABLE: 'INVENTORY_UNAVAILABLE',
  PAYMENTS_UNAVAILABLE: 'PAYMENTS_UNAVAILABLE',
  SHIPPING_SERVICE_UNAVAILABLE: 'SHIPPING_SERVICE_UNAVAILABLE',
  INTERNAL_ERROR: 'INTERNAL_ERROR',
} as const;
export type FailureReason = (typeof FailureReason)[keyof typeof FailureReason];

/** The business refusals an activity can raise, each mapped to the reason the order fails with. */
export const failureReasonByErrorType: Partial<Record<string, FailureReason>> = {
  [ErrorType.OutOfStock]: FailureReason.OUT_OF_STOCK,
  [ErrorType.UnknownProduct]: FailureReason.UNKNOWN_PRODUCT,
  [ErrorType.MixedCurrency]: FailureReason.UNKNOWN_PRODUCT,
  [ErrorType.PaymentDeclined]: FailureReason.PAYMENT_DECLINED,
  [ErrorType.ShippingUnavailable]: FailureReason.SHIPPING_UNAVAILABLE,
  [ErrorType.PickupTimeout]: FailureReason.SHIPPING_TIMEOUT,
  [ErrorType.ReviewRejected]: FailureReason.REVIEW_REJECTED,
  [ErrorType.InvalidData]: FailureReason.INVALID_DATA,
  [ErrorType.OrdersUnavailable]: FailureReason.ORDERS_UNAVAILABLE,
  [ErrorType.InventoryUnavailable]: FailureReason.INVENTORY_UNAVAILABLE,
  [ErrorType.PaymentsUnavailable]: FailureReason.PAYMENTS_UNAVAILABLE,
  [ErrorType.ShippingServiceUnavailable]: FailureReason.SHIPPING_SERVICE_UNAVAILABLE,
};

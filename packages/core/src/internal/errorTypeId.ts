/**
 * The brand of the error family, in a module of its own so every part of the family can use it.
 *
 * @internal
 */
/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@renew/core/RefreshError")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

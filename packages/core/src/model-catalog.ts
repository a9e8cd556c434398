import { jsonText, type Provider } from "@aigw/provider";
import type { ModelRouter } from "./router.js";
import { mayUseModel, type Tenant } from "./tenants.js";

/** One model as GET /v1/models shows it (OpenAI's model object). */
export interface ModelEntry {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

export interface ModelCatalogOptions {
  /** How long an upstream's list is reused, in ms. Default 600,000 (10 minutes). */
  ttlMs?: number;
  /** How long a failed listing is not tried again, in ms. Default 60,000. */
  retryAfterFailureMs?: number;
  /** Longest wait for an upstream's list, in ms. Default 5,000. */
  timeoutMs?: number;
}

/** Most models read from one upstream's list, and the longest id kept: lists are bounded. */
const maxListedModels = 10_000;
/** A longer list is not parsed (a hostile upstream could send up to its maxResponseBytes). */
const maxListBytes = 8 * 2 ** 20;
const maxIdLength = 256;

const entry = (id: string, ownedBy: string, created = 0): ModelEntry => ({
  id,
  object: "model",
  created,
  owned_by: ownedBy,
});

interface Listing {
  models: { id: string; created: number }[] | undefined;
  expiresAt: number;
}

/**
 * The models a caller may use: exact routes and aliases, plus, for a wildcard route, the
 * upstream's own models that match it (read from its GET /models, kept `ttlMs`), plus the names
 * a tenant is allowed that a route serves. An upstream that cannot list leaves its wildcard
 * routes to what is configured; a listing never fails the request.
 */
export function createModelCatalog(
  router: ModelRouter,
  providers: Record<string, Provider>,
  options: ModelCatalogOptions = {},
) {
  const ttlMs = options.ttlMs ?? 600_000;
  const retryAfterFailureMs = options.retryAfterFailureMs ?? 60_000;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const listings = new Map<string, Listing>();
  const pending = new Map<string, Promise<Listing>>();

  async function fetchListing(providerName: string): Promise<Listing> {
    const provider = providers[providerName] as Provider;
    try {
      const response = await provider.send(
        { endpoint: "models" },
        { deadlineAt: Date.now() + timeoutMs },
      );
      if (response.kind !== "json") throw new TypeError("not a JSON list");
      if (response.body.byteLength > maxListBytes) throw new RangeError("list too large");
      const parsed = JSON.parse(jsonText(response.body)) as {
        data?: unknown;
      };
      if (!Array.isArray(parsed.data)) throw new TypeError("no data list");
      const models: { id: string; created: number }[] = [];
      for (const item of parsed.data.slice(0, maxListedModels)) {
        const { id, created } = (item ?? {}) as { id?: unknown; created?: unknown };
        if (typeof id !== "string" || id === "" || id.length > maxIdLength) continue;
        models.push({ id, created: Number.isSafeInteger(created) ? (created as number) : 0 });
      }
      return { models, expiresAt: Date.now() + ttlMs };
    } catch {
      return { models: undefined, expiresAt: Date.now() + retryAfterFailureMs };
    }
  }

  /** The provider's own models, or undefined when it cannot list them right now. */
  async function upstreamModels(providerName: string) {
    const known = listings.get(providerName);
    if (known && known.expiresAt > Date.now()) return known.models;
    let listing = pending.get(providerName);
    if (!listing) {
      listing = fetchListing(providerName).finally(() => pending.delete(providerName));
      pending.set(providerName, listing);
    }
    const fetched = await listing;
    // A failed refresh keeps the last list that was read, until the next try.
    const models = fetched.models ?? known?.models;
    listings.set(providerName, { models, expiresAt: fetched.expiresAt });
    return models;
  }

  async function list(tenant: Tenant): Promise<ModelEntry[]> {
    const entries = new Map<string, ModelEntry>();
    const add = (id: string, routeName: string, ownedBy: string, created = 0) => {
      if (!entries.has(id) && mayUseModel(tenant, id, routeName)) {
        entries.set(id, entry(id, ownedBy, created));
      }
    };
    for (const { id, providerName } of router.listModels()) add(id, id, providerName);
    const wildcards = router.listWildcards();
    const upstream = await Promise.all(
      wildcards.map((wildcard) =>
        wildcard.fixedModel ? undefined : upstreamModels(wildcard.providerName),
      ),
    );
    wildcards.forEach((wildcard, index) => {
      for (const model of upstream[index] ?? []) {
        const id = wildcard.stripsPrefix ? wildcard.prefix + model.id : model.id;
        // The longest matching wildcard serves a model: list it under that route only.
        if (id.startsWith(wildcard.prefix) && router.resolve(id)?.name === wildcard.name) {
          add(id, wildcard.name, wildcard.providerName, model.created);
        }
      }
    });
    // Names a tenant is allowed that a route serves, whether or not an upstream listed them.
    for (const id of tenant.options.models ?? []) {
      const route = router.resolve(id);
      if (route && !id.includes("*")) add(id, route.name, route.targets[0]?.providerName ?? "");
    }
    return [...entries.values()];
  }

  return {
    list,
    /** One model, when the caller may use it and a route serves it (and its upstream lists it). */
    async find(tenant: Tenant, id: string): Promise<ModelEntry | undefined> {
      const route = router.resolve(id);
      if (!route || !mayUseModel(tenant, id, route.name)) return undefined;
      const providerName = route.targets[0]?.providerName ?? "";
      // An exact route or alias is its own name.
      if (route.name === id) return entry(id, providerName);
      const wildcard = router.listWildcards().find((candidate) => candidate.name === route.name);
      const models = wildcard?.fixedModel ? undefined : await upstreamModels(providerName);
      const upstreamId = wildcard?.stripsPrefix ? id.slice(wildcard.prefix.length) : id;
      const listed = models?.find((model) => model.id === upstreamId);
      // An upstream that cannot list does not make a routed model unknown.
      if (models && !listed) return undefined;
      return entry(id, providerName, listed?.created);
    },
  };
}

export type ModelCatalog = ReturnType<typeof createModelCatalog>;

import type { Provider } from "@aigw/provider";
import type { RouteCacheOptions } from "./cache-step.js";

export interface ModelRouteOptions {
  /** The name of a configured provider. */
  provider: string;
  /** The model sent upstream; when set, the route is an alias that rewrites the request. */
  model?: string;
  /** Caching for this route, over the gateway's `cache` settings (which must give a store). */
  cache?: RouteCacheOptions;
  /**
   * Leave out what a translating upstream cannot honour (Anthropic: `n` above 1, `temperature`
   * above 1, `logprobs`) instead of answering 400. Default: the provider's own setting.
   */
  dropUnsupportedParams?: boolean;
}

export interface RouteTarget {
  providerName: string;
  provider: Provider;
  /** The model to send upstream, or undefined to send the requested one unchanged. */
  model: string | undefined;
  /** See `ModelRouteOptions.dropUnsupportedParams`. */
  dropUnsupportedParams?: boolean | undefined;
}

export interface ResolvedRoute {
  /** The configured name that matched ("gpt-4o", "fast", "gpt-*"). */
  name: string;
  /** Targets in the order the request loop tries them. */
  targets: RouteTarget[];
}

interface WildcardRoute {
  prefix: string;
  route: ResolvedRoute;
  /** Whether the matched prefix is cut off before sending ("openai/*" sends "gpt-4o"). */
  stripsPrefix: boolean;
}

/** A wildcard route as listings see it. */
export interface WildcardListing {
  /** The route's configured name ("gpt-*"). */
  name: string;
  /** What a model must start with ("gpt-"). */
  prefix: string;
  stripsPrefix: boolean;
  providerName: string;
  /** The route sends one model whatever is asked: the upstream's list says nothing of it. */
  fixedModel: boolean;
}

export interface ModelRouter {
  resolve(model: string): ResolvedRoute | undefined;
  /** Configured names and aliases, without wildcards. */
  listModels(): { id: string; providerName: string }[];
  /** Wildcard routes, longest prefix first. */
  listWildcards(): WildcardListing[];
}

/**
 * Precedence: an exact name, then an alias (both exact keys; an exact name cannot be an alias
 * too), then the longest matching wildcard. A wildcard "name/*" strips "name/" from the
 * model it sends; other wildcards send the model as requested unless they name one.
 */
export function createModelRouter(
  models: Record<string, ModelRouteOptions>,
  providers: Record<string, Provider>,
): ModelRouter {
  const exact = new Map<string, ResolvedRoute>();
  const wildcards: WildcardRoute[] = [];

  for (const [name, options] of Object.entries(models)) {
    const provider = providers[options.provider];
    if (!provider) {
      throw new TypeError(`models.${name}.provider: unknown provider '${options.provider}'`);
    }
    const route: ResolvedRoute = {
      name,
      targets: [
        {
          providerName: options.provider,
          provider,
          model: options.model,
          dropUnsupportedParams: options.dropUnsupportedParams,
        },
      ],
    };
    const star = name.indexOf("*");
    if (star === -1) {
      exact.set(name, route);
    } else if (star === name.length - 1) {
      const prefix = name.slice(0, -1);
      wildcards.push({ prefix, route, stripsPrefix: prefix.endsWith("/") && !options.model });
    } else {
      throw new TypeError(`models.${name}: '*' is only allowed at the end of a model name`);
    }
  }
  wildcards.sort((left, right) => right.prefix.length - left.prefix.length);

  return {
    resolve(model) {
      const route = exact.get(model);
      if (route) return route;
      const wildcard = wildcards.find((candidate) => model.startsWith(candidate.prefix));
      if (!wildcard) return undefined;
      if (!wildcard.stripsPrefix) return wildcard.route;
      const stripped = model.slice(wildcard.prefix.length);
      if (!stripped) return undefined;
      return {
        name: wildcard.route.name,
        targets: wildcard.route.targets.map((target) => ({ ...target, model: stripped })),
      };
    },
    listModels() {
      return [...exact].map(([id, route]) => ({
        id,
        providerName: route.targets[0]?.providerName ?? "",
      }));
    },
    listWildcards() {
      return wildcards.map(({ prefix, route, stripsPrefix }) => ({
        name: route.name,
        prefix,
        stripsPrefix,
        providerName: route.targets[0]?.providerName ?? "",
        fixedModel: route.targets[0]?.model !== undefined,
      }));
    },
  };
}

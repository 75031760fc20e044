//! The options of the inner cross-validation: one candidate, the mean of
//! several, or a family that also learns from related objectives.

use super::Candidate;
#[cfg(doc)]
use super::{Family, Recipe, RelatedTarget};
use crate::features::PROXY_FEATURE_PREFIX;

/// One option of the recipe: a single candidate, or the mean of several
/// (served as one blended model text, [`crate::model::blend`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub members: Vec<Candidate>,
    /// Whether the mean of the members is also fitted on each related
    /// objective's values of the same rows ([`RelatedTarget`]), and those
    /// models' predictions averaged with the target's own ([`Family`]).
    /// Tried only where related values are given.
    pub family: bool,
}

impl Choice {
    pub fn single(candidate: Candidate) -> Self {
        Self {
            members: vec![candidate],
            family: false,
        }
    }

    /// The mean of `members`.
    pub fn mean(members: Vec<Candidate>) -> Self {
        Self {
            members,
            family: false,
        }
    }

    /// The mean of `members`, fitted on the target and on each related
    /// objective, averaged over them ([`Family`]).
    pub fn family(members: Vec<Candidate>) -> Self {
        Self {
            members,
            family: true,
        }
    }

    /// The members' names joined by `+`, e.g. `forest+boosted_small`, in
    /// `family(...)` for a family choice.
    pub fn name(&self) -> String {
        let names: Vec<&str> = self.members.iter().map(|c| c.name).collect();
        if self.family {
            format!("family({})", names.join("+"))
        } else {
            names.join("+")
        }
    }

    /// This choice for rows whose proxies are blanked: without the members
    /// that read only the proxies, which would learn a constant there and
    /// pull the mean toward it. A choice of such members alone becomes the
    /// forest, the recipe's model for rows that are few and unlike. A
    /// family choice becomes the plain mean of its members: the family's
    /// weights are those of models with proxies, which the trees without
    /// them are not.
    pub fn without_proxy_only_members(&self) -> Choice {
        let members: Vec<Candidate> = self
            .members
            .iter()
            .filter(|m| m.reads_only != Some(PROXY_FEATURE_PREFIX))
            .cloned()
            .collect();
        if members.is_empty() {
            Choice::single(Candidate::forest())
        } else {
            Choice::mean(members)
        }
    }

    /// Parses a name as [`Choice::name`] writes it.
    pub fn named(name: &str) -> Option<Choice> {
        let (inner, family) = match name
            .trim()
            .strip_prefix("family(")
            .and_then(|r| r.strip_suffix(')'))
        {
            Some(inner) => (inner, true),
            None => (name, false),
        };
        let members = inner
            .split('+')
            .map(|m| Candidate::named(m.trim()))
            .collect::<Option<Vec<_>>>()?;
        (!members.is_empty()).then_some(Choice { members, family })
    }

    /// Every option the default recipe chooses from, the defaults first.
    /// The default is the first option a table can be trained on:
    ///
    /// - where the op counts of the cell as sent determine the target (the
    ///   Eyeriss and FPGA costs), the mean of the count models: a sum of
    ///   per-op costs and a small booster for what the sum misses, both
    ///   functions of the counts alone, so they tie where the truth does;
    /// - with the one-hot of the cell as sent (other hardware costs), the
    ///   mean of a cost per op, a cost per op and edge and a small booster:
    ///   costs are close to additive over the ops, the per-op sum learns
    ///   from few rows what the per-edge one needs many for, and the
    ///   booster adds what both miss;
    /// - with the zero-cost proxies (accuracy and robustness), the mean of
    ///   a forest, a forest on the proxies alone, a small booster and the
    ///   same booster trained on the order of the rows
    ///   ([`Candidate::boosted_pairwise`]): models whose errors differ,
    ///   which rank better together than any of them where rows are few.
    ///   The ranker lifts the strongest attacks, where a regression spends
    ///   its splits on the few networks far from zero; where nearly every
    ///   row ties (APGD-CE at eps 8/255) it has nothing to learn from
    ///   (`MIN_ORDERED_QUERY_SHARE`) and the same mean without it is the
    ///   default;
    /// - otherwise the mean of a forest and a small booster.
    ///
    /// Besides the single candidates, the one-hot booster and its mean with
    /// the hardware default are options where a thousand rows show the
    /// interactions of ops, and the small booster's mean with the ranker
    /// one for the strongest attacks at a hundred rows and more. The proxy forest alone is not an option: at 32
    /// rows it switched in on noise and lost (`docs/quality.md`).
    ///
    /// Where the values of related objectives are given (the same attack
    /// at smaller strengths, or for the weakest the clean accuracy,
    /// [`crate::objectives::related`]), the proxy
    /// default fitted on each of them and averaged with the target's own
    /// ([`Family`]) is an option: it ranks the strongest attacks better at
    /// 32 and 128 rows, but not everywhere (Square at eps 8/255 and 128
    /// rows: 0.380 -> 0.354 as the default), so the inner cross-validation
    /// decides, except where many rows sit on the target's minimum or the
    /// default's own out-of-fold order is chance: there it is the default
    /// ([`Recipe::family_default_floor_share`], `own_order_is_chance`). Where
    /// the ranker is not tried, the same family without it stands in.
    ///
    /// `docs/quality.md` has the figures. Neither default is chosen by the
    /// inner cross-validation where rows are few: at 32 rows its figures
    /// are noise of ±0.12 (see `Recipe::select`).
    pub fn all() -> Vec<Choice> {
        use Candidate as C;
        let mean = Choice::mean;
        vec![
            mean(vec![C::counts_additive(), C::counts_boosted()]),
            mean(vec![C::op_costs(), C::additive(), C::boosted_small()]),
            mean(vec![C::additive(), C::boosted_small()]),
            mean(vec![
                C::forest(),
                C::proxies_forest(),
                C::boosted_small(),
                C::boosted_pairwise(),
            ]),
            mean(vec![C::forest(), C::proxies_forest(), C::boosted_small()]),
            mean(vec![C::forest(), C::boosted_small()]),
            Choice::single(C::forest()),
            Choice::single(C::boosted_small()),
            Choice::single(C::boosted()),
            Choice::single(C::additive()),
            Choice::single(C::onehot_boosted()),
            mean(vec![C::additive(), C::boosted_small(), C::onehot_boosted()]),
            Choice::single(C::counts_additive()),
            Choice::single(C::counts_boosted()),
            Choice::single(C::counts_forest()),
            Choice::single(C::boosted_sharp()),
            Choice::single(C::boosted_pairwise()),
            mean(vec![C::boosted_small(), C::boosted_pairwise()]),
            Choice::family(vec![
                C::forest(),
                C::proxies_forest(),
                C::boosted_small(),
                C::boosted_pairwise(),
            ]),
            Choice::family(vec![C::forest(), C::proxies_forest(), C::boosted_small()]),
        ]
    }
}

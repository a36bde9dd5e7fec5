//! The `after` graph of a playbook's steps: finding a cycle to report.

use std::collections::BTreeMap;

/// Finds one cycle in a graph of step id -> the steps it comes after.
pub(crate) fn find_cycle_in(graph: &BTreeMap<&str, Vec<&str>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = graph.keys().map(|k| (*k, Mark::New)).collect();
    fn visit<'a>(
        id: &'a str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        marks.insert(id, Mark::Active);
        stack.push(id);
        for dep in &graph[id] {
            let Some((dep, _)) = graph.get_key_value(dep) else { continue };
            match marks[dep] {
                Mark::Active => {
                    let start = stack.iter().position(|s| s == dep).unwrap_or(0);
                    let mut cycle: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                    cycle.push(dep.to_string());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(dep, graph, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(id, Mark::Done);
        None
    }
    let ids: Vec<&str> = graph.keys().copied().collect();
    for id in ids {
        if marks[id] == Mark::New {
            let mut stack = Vec::new();
            if let Some(c) = visit(id, graph, &mut marks, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}
